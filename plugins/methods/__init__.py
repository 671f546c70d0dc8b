"""Compression methods, one package per family; :mod:`.layers` holds which layers a
method touches, shared by all of them."""
