"""Language models: the hf source and LM task kinds (issue 5, in progress)."""
