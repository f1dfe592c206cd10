"""Roles of the stack that wrap a server of their own (``seghw serve proxy``)."""
