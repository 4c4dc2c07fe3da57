"""Image precache jobs (issue 19): fan an image out to many hosts, one origin copy per rack.
Routes: kumo/compute/routes/image_precache.py (the extension) and aggregates.py (2.81)."""
