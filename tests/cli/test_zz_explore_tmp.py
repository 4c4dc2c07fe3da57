from pathlib import Path
from tests.cli.conftest import OpenStackCLI, CLIError
from tests.conftest import Fleet

def test_x(osc: OpenStackCLI, fleet: Fleet, tmp_path: Path) -> None:
    fleet.add("host1"); fleet.add("host2")
    def go(*args, json=True, cloud="kumo"):
        try:
            out = osc.run(*args, json=json, cloud=cloud)
            print("OK  ", cloud, " ".join(args), "=>", str(out)[:1500])
        except ValueError as e:
            print("NOJSON", " ".join(args), e)
        except CLIError as e:
            print("FAIL", cloud, " ".join(args), "=>", e.stderr.strip()[-600:])
    go("flavor", "create", "--vcpus", "1", "--ram", "128", "--disk", "1", "f1")
    d = tmp_path / "d"; d.write_bytes(b"x"*100)
    go("image", "create", "--file", str(d), "--disk-format", "raw", "--container-format", "bare", "--public", "img")
    D = "kumo-demo"
    go("server", "create", "--flavor", "f1", "--image", "img", "--wait", "--description", "hello", "dvm", cloud=D)
    go("server", "unset", "--description", "dvm", json=False, cloud=D)
    go("server", "show", "dvm", cloud=D)
    go("server", "list", "--long", cloud=D)
    go("server", "stop", "dvm", json=False, cloud=D)
    go("server", "event", "list", "dvm", cloud=D)
    go("availability", "zone", "list", cloud=D)
    go("server", "migrate", "dvm", json=False, cloud=D)
    go("limits", "show", "--absolute", cloud=D)
    go("quota", "show", cloud=D)
    go("server", "list", "--all-projects", "--long")
    go("server", "rebuild", "--image", "img", "--wait", "dvm", json=False, cloud=D)
    go("server", "show", "dvm", cloud=D)
    go("server", "delete", "--wait", "dvm", json=False, cloud=D)
    go("server", "list", "--all-projects", "--deleted")
