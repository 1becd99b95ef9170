"""The user's docs/fix_plan.md: parsing and inserting attempt entries, and exporting a bundle into
the reports/ layout. Imports store and everything below it."""
