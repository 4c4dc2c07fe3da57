"""Image precache jobs (issue 19): fan an image out to many hosts, one origin copy per rack."""
