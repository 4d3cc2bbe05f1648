"""The `qpt-nb` command line: `qpt_nb.cli.main` (parser, `main`, scf/list) and
`qpt_nb.cli.train` (train, evaluate, demo), `qpt_nb.cli.predict` (predict)."""
