"""Service mixins, one per area; hub.service.Hub combines them into the one API."""
