"""The newsletter stage: select a digest, render it once per variant, build each message.

``render`` turns a :class:`~feedsvc.model.Digest` into HTML and text with fixed
placeholders where each subscriber's links go; ``message`` prepares the MIME
bytes once per rendered variant and fills in the placeholders per recipient.
"""
