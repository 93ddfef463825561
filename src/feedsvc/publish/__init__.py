"""Publish: every category as RSS 2.0, Atom 1.0 and JSON Feed 1.1, and an OPML of them.

Pure: entries and ``now`` in, document bytes out. Storing the documents, their
ETags and serving them belong to the store and web layers.
"""
