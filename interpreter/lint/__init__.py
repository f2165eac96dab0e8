"""The linter: the pipeline (parse, static rules, dry run, then the checks that need a
series), the catalogue of codes with their explain pages, and the rules by family."""
