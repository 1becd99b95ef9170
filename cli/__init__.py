"""nb-evidence's command line: thin typer apps over the bundle library."""
