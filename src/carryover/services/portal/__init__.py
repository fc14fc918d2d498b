"""Portal: what the subscriber portal's pages read and what their forms change.

Each page is one read of the line's book, like a balance read.
"""
