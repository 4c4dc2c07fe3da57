from pathlib import Path
from tests.cli.conftest import OpenStackCLI, CLIError
from tests.conftest import Fleet

def test_x(osc: OpenStackCLI, fleet: Fleet, tmp_path: Path) -> None:
    fleet.add("host1"); fleet.add("host2")
    def go(*args, json=True):
        try:
            out = osc.run(*args, json=json)
            print("OK  ", " ".join(args), "=>", str(out)[:600])
        except ValueError as e:
            print("NOJSON", " ".join(args), e)
            return
        except CLIError as e:
            print("FAIL", " ".join(args), "=>", e.stderr.strip()[-600:])
    go("flavor", "create", "--vcpus", "1", "--ram", "128", "--disk", "1", "f1")
    go("server", "list", "--name", "(")
    go("flavor", "create", "--vcpus", "2", "--ram", "256", "--disk", "1", "f2")
    d = tmp_path / "d"; d.write_bytes(b"x"*100)
    go("image", "create", "--file", str(d), "--disk-format", "raw", "--container-format", "bare", "img")
    go("aggregate", "create", "--zone", "az1", "agg1")
    go("aggregate", "add", "host", "agg1", "host2")
    go("keypair", "create", "--public-key", "/dev/null", "bad")
    kp = tmp_path / "k.pub"; kp.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3Z7w0bLNxfW7kAMlNm0vq0r1yXU8mPqK3qvS7o3d3h x@y\n")
    go("keypair", "create", "--public-key", str(kp), "kp")
    ud = tmp_path / "ud"; ud.write_text("#cloud-config\n")
    go("server", "create", "--flavor", "f1", "--image", "img", "--key-name", "kp", "--user-data", str(ud), "--availability-zone", "az1:host2", "--nic", "none", "--wait", "vm1")

    go("server", "set", "--name", "vm1b", "--description", "hello", "--property", "a=b", "vm1", json=False)
    go("server", "unset", "--property", "a", "--description", "vm1b", json=False)
    go("server", "show", "vm1b")
    go("server", "rebuild", "--image", "img", "--wait", "vm1b")
    go("server", "resize", "--flavor", "f2", "--wait", "vm1b", json=False)
    go("server", "migrate", "--wait", "vm1b", json=False)
    go("server", "migration", "list")
    go("server", "resize", "revert", "vm1b", json=False)
    go("server", "show", "vm1b")
    go("server", "pause", "vm1b", json=False)
    go("server", "image", "create", "--name", "snap", "vm1b")
    go("console", "log", "show", "vm1b", json=False)
    go("server", "event", "list", "--long", "vm1b")
    go("server", "list", "--deleted")
    go("server", "list", "--changes-since", "2020-01-01T00:00:00Z")
    go("server", "delete", "--wait", "multi-1", "multi-2", json=False)
    go("server", "stop", "vm1b", json=False)
    go("server", "delete", "--wait", "vm1b", json=False)
    go("server", "list", "--deleted", "--all-projects")
    go("usage", "list")
    go("server", "list", cloud="kumo-demo") if False else None
