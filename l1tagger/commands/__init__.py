"""One module per CLI sub-command (see l1tagger.cli)."""
