"""The dashboard at ``/ui``: the page (``dashboard.html/.css/.js``, served as one self-contained
document by `fraudgate.ui.page`), its view model (`fraudgate.ui.view`) and the cached evaluation
behind it (`fraudgate.ui.source`).

Below the server (which serves it, importing this room lazily) and above the evaluation (which it
computes): nothing here is imported when the server starts.
"""
