"""Pictures: rotation by the OATH angle (ImageMagick through Wand) and the figures reports share.

- :mod:`~oath.imaging.rotate`: rotate images pixel for pixel as the published ImageMagick step.
- :mod:`~oath.imaging.figures`: PNG bytes of a figure, class colours, contact sheets.
"""
