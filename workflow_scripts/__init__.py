"""The code behind spectsynth's Snakemake rules: small, importable, unit-tested modules."""
