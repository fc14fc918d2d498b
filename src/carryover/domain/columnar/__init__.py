"""Set-based (columnar) folding of many accounts at once; see fold.py."""
