"""Story identity: exact copies, one story across sources, series and related stories.

The bottom of the data flow for everything that asks "is this the same
story?": publish, newsletter and the web use it alike. Pure in the middle
(``features``, ``clusters``, ``series``, ``related``, ``exact``); the rows it
compares with come from the store through the ``detect.StoryIndex`` protocol.
"""
