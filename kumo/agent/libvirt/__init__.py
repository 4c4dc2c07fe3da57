"""Parts of the libvirt/QEMU driver (kumo.agent.drivers.libvirt): domain XML (pure), disks
(qemu-img), the connection with its lifecycle events, and the serial console log."""
