"""The media engine: everything a node does to one file.

probe (what is in it), decide (is it worth converting), commands (the ffmpeg
arguments per encoder family), capabilities (which encoders really work here),
runner (ffmpeg with progress and cancel), verify (is the output safe to use),
replace (swap through a crash-safe journal) and pipeline (all of it for one
file). Plain functions over plain data wherever possible; see
docs/media-engine.md.
"""
