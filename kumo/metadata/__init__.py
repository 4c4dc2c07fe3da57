"""The metadata service: the bundle of one instance's metadata (bundle.py), read by the API in
one statement or two (backend.py), rendered into the OpenStack and EC2 trees (render.py) and the
config drive (configdrive.py), and served to guests by the agent's responder (responder.py)
from an edge cache (cache.py) keyed by the (network, source address) map the data plane fills
(sources.py)."""
