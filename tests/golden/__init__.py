"""Golden layer: the installed command on the committed data/sample/, compared with the reviewed outputs
beside this file."""
