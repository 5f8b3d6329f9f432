"""Small services over one context (hub.services.context): each a class handed the context
and the services it needs; hub.service.Hub builds and holds them. No SQL here (hub.registry)."""
