"""The users' pass lines for image metrics (nanobragg-facts.md §6), defined once.

bundle.analysis.metrics decides pass/fail with them; bundle.present.vocabulary words them
("≥ 0.999", "≤ 1 px"). Here, in model, so that wording them does not load numpy.
"""

CORRELATION_PASS = 0.999  # Pearson correlation of the two images, at least
PEAK_DISTANCE_PASS = 1.0  # mean distance of matched bright peaks in pixels, at most
