"""The face library: a web app and HTTP API on the device (``[web]`` in the daemon config).

One module per concern: :mod:`~edge.web.auth` (password hash, API token, sign-in rate limit),
:mod:`~edge.web.sessions` (session cookie, CSRF), :mod:`~edge.web.visits` (the SQLite store of
visits and their face crops, with retention), :mod:`~edge.web.clusters` (grouping unknown
faces), :mod:`~edge.web.library` (recognition and every gallery change, under the gallery's
single-writer lock), :mod:`~edge.web.live` (the latest annotated frame),
:mod:`~edge.web.recorder` (the daemon's hook), :mod:`~edge.web.uploads` (request and image
limits), :mod:`~edge.web.api` and :mod:`~edge.web.pages` (routes), :mod:`~edge.web.app`
(assembly, auth middleware) and :mod:`~edge.web.server` (uvicorn in a thread).

Nothing here is imported unless ``web.enabled`` is true or an ``edge web*`` command runs, and
only :mod:`~edge.web.app` and :mod:`~edge.web.server` need the ``web`` extra (Starlette,
uvicorn, Jinja2, python-multipart).
"""
