"""The roles of the stack, one module each: what ``seghw serve ROLE`` runs in the foreground, and what
each service's Dockerfile names.

- ``trainer``: an rq worker on queue ``train`` that runs one training at a time;
- ``visualdl``: one VisualDL server over the whole log root (the command line lives here);
- ``monitor``: an rq worker and one scheduler that keep every run's health in Redis;
- ``proxy``: nginx in front of VisualDL (password, gzip, cache headers, TLS).

Redis, the fifth service, is Redis itself.
"""
