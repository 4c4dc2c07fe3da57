"""The work queue: task rows for hosts' agents and baremetal conductors (`models`), the kinds
of work and their payloads (`kinds`), enqueue / poll / settle helpers (`queue`) and the hooks
higher layers register at start-up (`hooks`). Imports only kumo.db, kumo.errors, the standard
library and SQLAlchemy: compute, agent and baremetal import it, never the other way round."""
