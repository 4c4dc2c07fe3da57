"""The dashboard in a real browser: Debian's Chromium, headless, driven by Selenium through Debian's
chromedriver (scripts/install-browser; no browser is downloaded), against one in-process kumo
API with fake-driver agents shared by the module's tests. Screenshots of the main pages (laptop
and phone widths) are saved in screenshots*/ under pytest's base temporary directory, or in
$KUMO_ARTIFACTS_DIR/dashboard when that is set.

What is proven: the demo user signs in, makes a key pair and a network, creates a server on them
and watches it reach ACTIVE, reads its console and its instance actions, and deletes it, all
through the pages; the dashboard's API calls carry its request ids, which the API log shows; a
member sees no operator page and a direct operator URL is refused; an operator approves a member's
stock request; a form posted without its CSRF token is refused (plain httpx) and changes nothing."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo.agent.drivers.fake import FakeDriver
from tests.conftest import DEMO_PASSWORD, Cloud, Fleet, start_cloud, wait_for
from tests.functional.helpers import canary_report, make_flavor, upload_image

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
API = "/compute/v2.1"
CONSOLE_LINE = "kumo fake guest {uuid}: login:"
OPERATOR_PAGES = (
    "/dashboard/admin/hosts",
    "/dashboard/admin/stock",
    "/dashboard/admin/canaries",
    "/dashboard/admin/rebalancer",
    "/dashboard/admin/charts",
)
WATCHER = {"OpenStack-API-Version": "infra-optim 1.5"}
IRONIC = {"X-OpenStack-Ironic-API-Version": "1.65"}
SPAWN_SECONDS = 2.0  # how long v1's guests take to build: the page shows BUILD first, then ACTIVE

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed (scripts/install-browser)",
        allow_module_level=True,
    )

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException  # noqa: E402
from selenium.webdriver import Chrome, ChromeOptions  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


class ConsoleDriver(FakeDriver):
    """A fake hypervisor whose guests print one console line naming themselves."""

    def console_output(self, instance: dict[str, Any], lines: int | None = None) -> str:
        super().console_output(instance, lines)  # a guest that is not here is refused as usual
        return CONSOLE_LINE.format(uuid=instance["uuid"]) + "\n"


class APILog(logging.Handler):
    """The API's request log lines with their request ids."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((getattr(record, "request_id", "-"), record.getMessage()))

    def calls_of(self, request_id: str) -> list[str]:
        return [message for rid, message in self.lines if rid == request_id]


def stock_setup(c: httpx.Client) -> None:
    """Flavor bm.small with machines m1, m2 in its public stock (as test_stock.py's)."""
    fid = make_flavor(c, "bm.small", vcpus=4, ram=7000, disk=10)
    specs = {"extra_specs": {"aggregate_instance_extra_specs:baremetal": "true"}}
    assert c.post(f"{API}/flavors/{fid}/os-extra_specs", json=specs).status_code == 200
    agg = c.post(f"{API}/os-aggregates", json={"aggregate": {"name": "bm.small"}}).json()["aggregate"]
    metadata = {"baremetal": "true", "filter_flavor_id": fid, "bm.small": "true"}
    action = f"{API}/os-aggregates/{agg['id']}/action"
    assert c.post(action, json={"set_metadata": {"metadata": metadata}}).is_success
    for host in ("m1", "m2"):
        assert c.post(action, json={"add_host": {"host": host}}).status_code == 200


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cloud, APILog]]:
    """One cloud: VM host v1 (zone az-east, rack r1, guests that take SPAWN_SECONDS to build and
    print a console line), stock machines m1, m2 (rack r2), flavor m1.tiny and a public image."""
    cloud = start_cloud(tmp_path_factory.mktemp("dashboard"))
    log = APILog()
    api_logger = logging.getLogger("kumo.api")
    level = api_logger.level
    api_logger.setLevel(logging.INFO)
    api_logger.addHandler(log)
    fleet = Fleet(cloud)
    try:
        fleet.add("v1", rack="r1", driver=ConsoleDriver("v1", delay=SPAWN_SECONDS))
        for host in ("m1", "m2"):
            fleet.add(host, vcpus=4, memory_mb=8192, rack="r2")
        with cloud.client(microversion="2.64") as admin:
            wait_for(lambda: len(admin.get(f"{API}/os-hypervisors").json()["hypervisors"]) == 3)
            make_flavor(admin, "m1.tiny")
            upload_image(admin, name="cirros")
            stock_setup(admin)
            east = admin.post(
                f"{API}/os-aggregates", json={"aggregate": {"name": "east", "availability_zone": "az-east"}}
            )
            assert east.status_code == 200, east.text
            added = admin.post(
                f"{API}/os-aggregates/{east.json()['aggregate']['id']}/action",
                json={"add_host": {"host": "v1"}},
            )
            assert added.status_code == 200, added.text
        yield cloud, log
    finally:
        fleet.stop()
        cloud.server.stop()
        api_logger.removeHandler(log)
        api_logger.setLevel(level)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("KUMO_ARTIFACTS_DIR")
    folder = Path(root) / "dashboard" if root else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    driver = Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, seconds: float = 30) -> WebDriverWait[WebDriver]:
    # A partial page update can swap an element out between the wait's find and its read; Chromium then
    # answers "unknown error: Node with given id does not belong to the document" rather than a stale
    # reference. Both mean "look again", so the wait polls on until its timeout.
    return WebDriverWait(
        driver,
        seconds,
        poll_frequency=0.1,
        ignored_exceptions=(StaleElementReferenceException, WebDriverException),
    )


def sign_in(driver: WebDriver, url: str, user: str, password: str, project: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/dashboard/")
    wait(driver).until(ec.presence_of_element_located((By.ID, "username")))
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "project").send_keys(project)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "project-name"), project))


def press(driver: WebDriver, button: WebElement) -> None:
    """Click a form's button and wait until the page it posted to has replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    button.click()
    wait(driver).until(ec.staleness_of(page))


def submit(driver: WebDriver, form_action: str) -> None:
    press(driver, driver.find_element(By.CSS_SELECTOR, f"form[action='{form_action}'] button[type=submit]"))


def flash(driver: WebDriver) -> str:
    return str(wait(driver).until(ec.presence_of_element_located((By.ID, "flash"))).text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def shoot(driver: WebDriver, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot of {name}"
    assert path.stat().st_size > 1000


def test_demo_user_creates_watches_reads_and_deletes_a_server(
    site: tuple[Cloud, APILog], browser: WebDriver, shots: Path
) -> None:
    cloud, log = site
    d = browser
    sign_in(d, cloud.url, "demo", DEMO_PASSWORD, "demo")
    shoot(d, shots, "servers-empty")

    d.get(f"{cloud.url}/dashboard/keypairs")
    d.find_element(By.ID, "kp-name").send_keys("web-key")
    submit(d, "/dashboard/keypairs")
    assert "PRIVATE KEY" in wait(d).until(ec.presence_of_element_located((By.ID, "private-key"))).text
    shoot(d, shots, "keypairs")

    d.get(f"{cloud.url}/dashboard/networks")
    d.find_element(By.ID, "net-name").send_keys("web-net")
    d.find_element(By.ID, "net-cidr").send_keys("10.77.0.0/24")
    submit(d, "/dashboard/networks")
    assert flash(d) == "Network web-net created."
    assert "10.77.0.0/24" in d.find_element(By.ID, "networks").text
    rule_form = d.find_element(By.CSS_SELECTOR, "form.rule-form")  # the default group's
    rule_form.find_element(By.NAME, "port_min").send_keys("22")
    press(d, rule_form.find_element(By.TAG_NAME, "button"))
    assert flash(d) == "Rule added."
    assert "ingress IPv4 tcp 22 any" in d.find_element(By.CSS_SELECTOR, "section.card").text
    rule_form = d.find_element(By.CSS_SELECTOR, "form.rule-form")
    rule_form.find_element(By.NAME, "port_min").send_keys("ssh")
    press(d, rule_form.find_element(By.TAG_NAME, "button"))
    refused = flash(d)  # Neutron's own words, with its status
    assert refused.startswith("400: ") and "ssh" in refused, refused
    shoot(d, shots, "networks")

    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo"), microversion="2.64") as demo:
        group = {"server_group": {"name": "web-ha", "policy": "anti-affinity"}}
        assert demo.post(f"{API}/os-server-groups", json=group).status_code == 200

    d.get(f"{cloud.url}/dashboard/servers/new")
    d.find_element(By.ID, "name").send_keys("web-1")
    Select(d.find_element(By.ID, "group")).select_by_visible_text("web-ha (anti-affinity)")
    Select(d.find_element(By.ID, "flavor")).select_by_visible_text("m1.tiny (vm: 1 vCPU, 512 MiB, 1 GB)")
    Select(d.find_element(By.ID, "image")).select_by_visible_text("cirros")
    Select(d.find_element(By.ID, "network")).select_by_visible_text("web-net")
    Select(d.find_element(By.ID, "key_name")).select_by_visible_text("web-key")
    shoot(d, shots, "server-create")
    submit(d, "/dashboard/servers")
    assert flash(d) == "Creating web-1."
    building = d.find_element(By.ID, "status").text
    assert building == "BUILD"  # the guest takes SPAWN_SECONDS: the page shows it building, then…
    shoot(d, shots, "server-building")
    wait(d).until(ec.text_to_be_present_in_element((By.ID, "status"), "ACTIVE"))  # …live, by itself
    server_id = d.current_url.rsplit("/", 1)[1]
    # Settled, the page reloads whole: the console and the actions are those of the running guest.
    wait(d).until(ec.text_to_be_present_in_element((By.ID, "console"), CONSOLE_LINE.format(uuid=server_id)))
    assert re.fullmatch(r"web-net: 10\.77\.0\.\d+", d.find_element(By.ID, "addresses").text)
    actions = d.find_element(By.ID, "instance-actions").text
    assert "create" in actions
    shoot(d, shots, "server-active")

    # The create went to the API with the dashboard's request id: the instance action records
    # it, and the API log shows the POST under it.
    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as demo:
        recorded = demo.get(f"{API}/servers/{server_id}/os-instance-actions").json()["instanceActions"]
        server = demo.get(f"{API}/servers/{server_id}").json()["server"]
    assert server["key_name"] == "web-key"
    create_id = next(a["request_id"] for a in recorded if a["action"] == "create")
    assert create_id in actions
    assert any(m.startswith("POST /compute/v2.1/servers -> 202") for m in log.calls_of(create_id))
    assert any(m.startswith("POST /dashboard/servers -> 303") for m in log.calls_of(create_id))
    page_id = d.find_element(By.ID, "request-id").text
    assert any(m.startswith(f"GET /compute/v2.1/servers/{server_id} -> 200") for m in log.calls_of(page_id))

    d.get(f"{cloud.url}/dashboard/servers")
    row = wait(d).until(ec.presence_of_element_located((By.CSS_SELECTOR, f"tr[data-server='{server_id}']")))
    assert [c.text for c in row.find_elements(By.TAG_NAME, "td")][1:4] == ["ACTIVE", "vm", "m1.tiny"]
    assert [c.text for c in row.find_elements(By.TAG_NAME, "td")][5:] == [
        "az-east",
        "web-ha (anti-affinity by host)",
    ]
    shoot(d, shots, "servers")
    d.set_window_size(390, 844)  # a phone
    shoot(d, shots, "servers-phone")
    d.set_window_size(1280, 900)

    d.get(f"{cloud.url}/dashboard/servers/{server_id}")
    press(d, d.find_element(By.ID, "action-lock"))  # a locked server refuses the owner's actions…
    assert flash(d) == "lock: requested." and d.find_element(By.ID, "locked").text == "yes"
    press(d, d.find_element(By.ID, "action-stop"))
    refused = flash(d)  # …in the API's words
    assert refused.startswith("409: ") and "locked" in refused, refused
    press(d, d.find_element(By.ID, "action-unlock"))
    assert d.find_element(By.ID, "locked").text == "no"
    # Pause, then unpause: the page offers what the status allows, and settles on PAUSED.
    press(d, d.find_element(By.ID, "action-pause"))
    assert flash(d) == "pause: requested."
    wait(d).until(ec.presence_of_element_located((By.ID, "action-unpause")))  # reloaded once PAUSED
    assert d.find_element(By.ID, "status").text == "PAUSED" and not d.find_elements(By.ID, "action-pause")
    press(d, d.find_element(By.ID, "action-unpause"))
    wait(d).until(ec.presence_of_element_located((By.ID, "action-pause")))
    assert d.find_element(By.ID, "status").text == "ACTIVE"
    press(d, d.find_element(By.ID, "action-delete"))
    assert flash(d) == "delete: requested."
    # The list refreshes itself until the server is gone.
    wait(d).until(ec.invisibility_of_element_located((By.CSS_SELECTOR, f"tr[data-server='{server_id}']")))
    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as demo:
        assert demo.get(f"{API}/servers/{server_id}").status_code == 404

    # web-1, deleted, counts in the quotas no more, and its seconds of running are in the usage.
    d.get(f"{cloud.url}/dashboard/quotas")
    quotas = d.find_element(By.ID, "quotas").text
    assert "Instances 0 10" in quotas and "vCPUs 0 20" in quotas
    usage = re.fullmatch(
        r"Server hours\n[\d.]+\nvCPU hours\n[\d.]+\nRAM \(MiB hours\)\n([\d.]+)\nDisk \(GB hours\)\n[\d.]+",
        d.find_element(By.ID, "usage").text,
    )
    assert usage is not None and float(usage.group(1)) > 0  # 512 MiB for the seconds web-1 ran


def test_a_member_sees_no_operator_page_and_is_refused_one_and_uploads_an_image(
    site: tuple[Cloud, APILog], browser: WebDriver, shots: Path, tmp_path: Path
) -> None:
    cloud, _ = site
    d = browser
    sign_in(d, cloud.url, "demo", DEMO_PASSWORD, "demo")
    nav = d.find_element(By.TAG_NAME, "nav").text
    assert "Servers" in nav and not {"Hosts", "Stock approvals", "Canaries", "Rebalancer", "Charts"} & set(
        nav.split("\n")
    )
    for page in OPERATOR_PAGES:
        d.get(cloud.url + page)
        assert d.find_element(By.TAG_NAME, "h1").text == "Error 403"
        assert (
            d.find_element(By.ID, "error-message").text == "Only administrators may open the operator pages."
        )
    shoot(d, shots, "member-refused")
    # An image upload streams through the dashboard to Glance, past the API's 4 MiB body limit.
    data = tmp_path / "disk.raw"
    data.write_bytes(os.urandom(1024) * 5 * 1024)
    d.get(f"{cloud.url}/dashboard/images")
    d.find_element(By.ID, "image-name").send_keys("uploaded")
    submit(d, "/dashboard/images")
    d.find_element(By.ID, "file").send_keys(str(data))
    d.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    wait(d).until(ec.text_to_be_present_in_element((By.ID, "image-status"), "active"))
    image_id = d.current_url.rsplit("/", 1)[1]
    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as demo:
        stored = demo.get(f"/image/v2/images/{image_id}/file")
    assert stored.status_code == 200 and stored.content == data.read_bytes()
    d.get(f"{cloud.url}/dashboard/server-groups")
    d.find_element(By.ID, "sg-name").send_keys("db-ha")
    Select(d.find_element(By.ID, "failure_domain")).select_by_visible_text("rack")
    submit(d, "/dashboard/server-groups")
    assert flash(d) == "Server group db-ha created."
    assert "db-ha anti-affinity rack 0" in d.find_element(By.ID, "server-groups").text
    Select(d.find_element(By.ID, "policy")).select_by_visible_text("affinity")
    d.find_element(By.ID, "sg-name").send_keys("together")
    Select(d.find_element(By.ID, "failure_domain")).select_by_visible_text("rack")
    submit(d, "/dashboard/server-groups")
    assert flash(d) == "Server group together created."
    assert "together affinity rack 0" in d.find_element(By.ID, "server-groups").text
    for page in ("images", "server-groups", "quotas", "stock"):
        d.get(f"{cloud.url}/dashboard/{page}")
        assert d.find_elements(By.ID, "error-message") == []
        shoot(d, shots, page)


def test_an_operator_approves_a_members_stock_request(
    site: tuple[Cloud, APILog], browser: WebDriver, shots: Path
) -> None:
    cloud, _ = site
    d = browser
    sign_in(d, cloud.url, "demo", DEMO_PASSWORD, "demo")
    d.get(f"{cloud.url}/dashboard/stock")
    Select(d.find_element(By.ID, "stock-flavor")).select_by_visible_text("bm.small")
    d.find_element(By.ID, "reason").send_keys("database cluster")
    submit(d, "/dashboard/stock")
    assert flash(d) == "Stock requested."
    row = d.find_element(By.CSS_SELECTOR, "#stock-requests tbody tr")
    request_id = row.get_attribute("data-request")
    assert row.find_element(By.CLASS_NAME, "stock-status").text == "pending"

    sign_in(d, cloud.url, "admin", "admin-secret", "admin")
    d.get(f"{cloud.url}/dashboard/admin/hosts")
    machines = d.find_element(By.ID, "machines").text
    assert all(name in machines for name in ("v1", "m1", "m2"))
    bars = d.find_elements(By.CSS_SELECTOR, "#capacity-chart text.label")
    assert sorted(b.text for b in bars) == ["az-east", "nova"]  # one bar per availability zone
    shoot(d, shots, "admin-hosts")

    d.get(f"{cloud.url}/dashboard/admin/stock")
    shoot(d, shots, "admin-stock")
    press(d, d.find_element(By.CSS_SELECTOR, f"tr[data-request='{request_id}'] button.approve"))
    assert flash(d) == "Stock request approved."
    row = d.find_element(By.CSS_SELECTOR, f"tr[data-request='{request_id}']")
    assert row.find_element(By.TAG_NAME, "td").text == "demo"  # the project, by name
    assert row.find_element(By.CLASS_NAME, "stock-status").text == "approved"
    moved = row.find_element(By.CLASS_NAME, "stock-hosts").text
    found = re.fullmatch(r"(m[12]) \((bm\.small\.[0-9a-f]+)\)", moved)
    assert found, moved
    host, private = found.groups()
    left = ({"m1", "m2"} - {host}).pop()
    stock = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#stock-aggregates tbody tr")]
    assert stock == [f"bm.small bm.small public {left}", f"{private} bm.small private to demo {host}"]
    with cloud.client() as admin:
        body = admin.get(f"{API}/os-kumo-stock-requests/{request_id}").json()["stock_request"]
    assert body["status"] == "approved" and len(body["hosts"]) == 1


def test_a_form_without_its_csrf_token_is_refused(site: tuple[Cloud, APILog]) -> None:
    cloud, _ = site
    with httpx.Client(base_url=cloud.url, follow_redirects=True, timeout=30) as b:
        login_page = b.get("/dashboard/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page)
        assert token is not None
        creds = {"username": "demo", "password": DEMO_PASSWORD, "project": "demo"}
        refused = b.post("/dashboard/login", data=creds)  # no token: no sign-in either
        assert refused.status_code == 403 and "CSRF" in refused.text
        signed_in = b.post("/dashboard/login", data={**creds, "csrf_token": token.group(1)})
        assert signed_in.status_code == 200 and str(signed_in.url).endswith("/dashboard/servers")
        fresh = re.search(r'name="csrf_token" value="([^"]+)"', signed_in.text)
        assert fresh is not None and fresh.group(1) != token.group(1)  # a new session, a new token
        form = {"name": "csrf-net"}
        for sent in ({}, {"csrf_token": ""}, {"csrf_token": token.group(1)}):  # absent, empty, stale
            resp = b.post("/dashboard/networks", data={**form, **sent})
            assert resp.status_code == 403, resp.text
            assert "The form&#39;s CSRF token is missing or does not match this session." in resp.text
        with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as demo:
            names = [n["name"] for n in demo.get("/networking/v2.0/networks").json()["networks"]]
        assert "csrf-net" not in names
        # Signing out revokes the token the session held: a copy of the cookie is worthless.
        cookie = b.cookies.get("kumo_dashboard")
        assert b.post("/dashboard/logout", data={"csrf_token": fresh.group(1)}).url.path == "/dashboard/login"
    with httpx.Client(base_url=cloud.url, cookies={"kumo_dashboard": cookie or ""}) as replay:
        page = replay.get("/dashboard/servers")
    assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"


def test_errors_around_the_routes_are_pages_too(site: tuple[Cloud, APILog]) -> None:
    cloud, _ = site
    with httpx.Client(base_url=cloud.url, timeout=30) as b:
        for method, path, status, message in (
            ("GET", "/dashboard/no-such-page", 404, "The resource could not be found."),
            ("GET", "/dashboard/logout", 405, "Method Not Allowed"),
        ):
            resp = b.request(method, path)
            assert resp.status_code == status and resp.headers["content-type"].startswith("text/html")
            assert f'<p role="alert" id="error-message">{message}</p>' in resp.text
        assert b.get("/compute/v2.1/no-such-thing").json()["itemNotFound"]["code"] == 404  # others: theirs


def test_switching_project_rescopes_the_session_and_revokes_the_old_token(site: tuple[Cloud, APILog]) -> None:
    cloud, _ = site
    with cloud.client() as admin:  # dash-user: a member of demo and dash-other, no default project
        project = admin.post("/identity/v3/projects", json={"project": {"name": "dash-other"}})
        assert project.status_code == 201, project.text
        other = project.json()["project"]["id"]
        demo_project = admin.get("/identity/v3/projects", params={"name": "demo"}).json()["projects"][0]["id"]
        user = admin.post(
            "/identity/v3/users", json={"user": {"name": "dash-user", "password": "dash-secret"}}
        )
        assert user.status_code == 201, user.text
        user_id = user.json()["user"]["id"]
        member = admin.get("/identity/v3/roles", params={"name": "member"}).json()["roles"][0]["id"]
        for project_id in (demo_project, other):
            granted = admin.put(f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{member}")
            assert granted.status_code == 204, granted.text
    with httpx.Client(base_url=cloud.url, follow_redirects=True, timeout=30) as b:
        page = b.get("/dashboard/login").text
        creds = {
            "username": "dash-user",
            "password": "dash-secret",
            "project": "",
            "csrf_token": csrf_of(page),
        }
        unscoped = b.post("/dashboard/login", data=creds)  # no project named: choose one first
        assert str(unscoped.url).endswith("/dashboard/projects") and "Choose a project." in unscoped.text
        assert '<strong id="project-name">(no project)</strong>' in unscoped.text
        demo = re.search(r'<option value="([0-9a-f]+)"[^>]*>demo</option>', unscoped.text)
        assert demo is not None, unscoped.text
        choose = {"project_id": demo.group(1), "csrf_token": csrf_of(unscoped.text)}
        assert '<strong id="project-name">demo</strong>' in b.post("/dashboard/projects", data=choose).text
        first_cookie = b.cookies.get("kumo_dashboard")
        listed = b.get("/dashboard/projects").text
        assert "dash-other" in listed and ">demo<" in listed
        switched = b.post("/dashboard/projects", data={"project_id": other, "csrf_token": csrf_of(listed)})
        assert switched.status_code == 200 and str(switched.url).endswith("/dashboard/servers")
        assert '<strong id="project-name">dash-other</strong>' in switched.text
        assert "Now in project dash-other." in switched.text
        refused = b.post(
            "/dashboard/projects", data={"project_id": "nope", "csrf_token": csrf_of(switched.text)}
        )
        shown = re.search(r'id="flash">([^<]*)<', refused.text)
        assert shown is not None, refused.text  # Keystone's refusal, shown; the session stays as it was
        assert shown.group(1).startswith("401: The request you have made requires authentication.")
        assert '<strong id="project-name">dash-other</strong>' in refused.text
    # The demo project's token is revoked: the cookie that held it signs nobody in.
    with httpx.Client(base_url=cloud.url, cookies={"kumo_dashboard": first_cookie or ""}) as replay:
        page_resp = replay.get("/dashboard/servers")
    assert page_resp.status_code == 303 and page_resp.headers["location"] == "/dashboard/login"


def test_an_operator_reads_canaries_starts_a_plan_and_toggles_a_nodes_maintenance(
    site: tuple[Cloud, APILog], browser: WebDriver, shots: Path
) -> None:
    cloud, _ = site
    with cloud.client() as admin:
        for host, ok in (("v1", True), ("m2", False), ("m2", False)):  # m2: two failures, suspect
            assert admin.post(f"{API}/os-kumo-canaries", json=canary_report(host, ok)).status_code == 201
        audit = admin.post(
            "/infra-optim/v1/audits",
            json={"audit_type": "ONESHOT", "goal": "noisy_neighbor", "name": "web-audit"},
            headers=WATCHER,
        )
        assert audit.status_code == 201, audit.text
        plans = wait_for(
            lambda: admin.get(
                "/infra-optim/v1/action_plans", params={"audit_uuid": audit.json()["uuid"]}, headers=WATCHER
            ).json()["action_plans"]
        )
        node = admin.post(
            "/baremetal/v1/nodes",
            json={"name": "bm-web", "driver": "fake-hardware", "resource_class": "bm.small"},
            headers=IRONIC,
        )
        assert node.status_code == 201, node.text
    (plan,) = plans
    d = browser
    sign_in(d, cloud.url, "admin", "admin-secret", "admin")

    d.get(f"{cloud.url}/dashboard/admin/canaries")
    verdicts = {
        r.get_attribute("data-host"): r.find_element(By.CLASS_NAME, "verdict").text
        for r in d.find_elements(By.CSS_SELECTOR, "#canary-hosts tbody tr[data-host]")
    }
    assert (verdicts["v1"], verdicts["m2"]) == ("healthy", "suspect (down-weighted)")
    assert "req-canary-active-m2" in d.find_element(By.TAG_NAME, "main").text  # a step's request id
    shoot(d, shots, "admin-canaries")

    d.get(f"{cloud.url}/dashboard/admin/rebalancer")
    section = d.find_element(By.CSS_SELECTOR, f"section[data-plan='{plan['uuid']}']")
    assert section.find_element(By.CLASS_NAME, "plan-state").text == "RECOMMENDED"
    shoot(d, shots, "admin-rebalancer")
    press(d, section.find_element(By.CLASS_NAME, "start-plan"))
    assert flash(d) == "Action plan started."
    state = d.find_element(By.CSS_SELECTOR, f"section[data-plan='{plan['uuid']}'] .plan-state").text
    assert state in ("PENDING", "ONGOING", "SUCCEEDED"), state  # no moves: it may end at once
    with cloud.client() as admin:
        after = admin.get(f"/infra-optim/v1/action_plans/{plan['uuid']}", headers=WATCHER).json()["state"]
    assert after != "RECOMMENDED"
    d.set_window_size(390, 844)
    shoot(d, shots, "admin-rebalancer-phone")
    d.set_window_size(1280, 900)

    d.get(f"{cloud.url}/dashboard/admin/hosts")
    row = d.find_element(By.CSS_SELECTOR, "tr[data-machine='bm-web']")
    assert row.find_element(By.CLASS_NAME, "maintenance").text == "no"
    form = row.find_element(By.CSS_SELECTOR, "form.maintenance-form")
    form.find_element(By.NAME, "reason").send_keys("fan replacement")
    press(d, form.find_element(By.TAG_NAME, "button"))
    assert flash(d) == "bm-web: maintenance on."
    row = d.find_element(By.CSS_SELECTOR, "tr[data-machine='bm-web']")
    assert row.find_element(By.CLASS_NAME, "maintenance").text == "yes: fan replacement"
    shoot(d, shots, "admin-hosts-maintenance")
    with cloud.client() as admin:
        got = admin.get(f"/baremetal/v1/nodes/{node.json()['uuid']}", headers=IRONIC).json()
    assert (got["maintenance"], got["maintenance_reason"]) == (True, "fan replacement")
    press(d, row.find_element(By.CSS_SELECTOR, "form.maintenance-form button"))
    assert flash(d) == "bm-web: maintenance off."

    d.get(f"{cloud.url}/dashboard/admin/charts")
    assert d.find_elements(By.ID, "vcpu-chart") and d.find_elements(By.ID, "memory-chart")
    # web-1's boot, when the module's first test ran in this process: a bar; else "no boot yet".
    assert d.find_elements(By.ID, "boot-chart") or d.find_elements(By.ID, "boot-chart-empty")
    shoot(d, shots, "admin-charts")
