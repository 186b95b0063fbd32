"""Analysis of stored runs: statistics (`stats`), figures (`plots`) and the HTML/Markdown report (`report`).

Reads results only and never imports torch; import the submodules directly (`actlab.analysis.stats`).
"""
