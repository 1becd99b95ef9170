"""Pure analysis over plain data: trace parsing, key-by-key comparison, the normalization chain,
image metrics, offline compare. Imports only bundle.model."""
