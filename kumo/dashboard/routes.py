"""The dashboard's routes under /dashboard: each reads its session (and, for a POST, its form with
the CSRF token checked first), calls one function of `pages` with an `API` of the user's own
token, and renders a template. A POST answers with a redirect (its outcome, or the API's
refusal, shown once on the next page). `install` mounts it all into the one ASGI app."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from kumo.api import errors
from kumo.apiclient import APIError
from kumo.config import Settings
from kumo.dashboard import charts, client, pages
from kumo.dashboard.session import COOKIE, PAGE_HEADERS, PATH, Session, Sessions, cookie_secure
from kumo.logs import request_id_var

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


class Refused(Exception):
    """Answered with the error page: a missing CSRF token, a member on an operator page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignIn(Exception):
    """No signed-in session (or its token expired): to the login page."""


class Dashboard:
    def __init__(self, settings: Settings) -> None:
        self.sessions = Sessions(
            settings.secret("dashboard_key", generate="fernet"), settings.token_ttl_seconds
        )
        self.api_url = settings.dashboard_api_url.rstrip("/")
        self.cookie_secure = settings.dashboard_cookie_secure
        self.http = client.connection_pool()

    def base_url(self, request: Request) -> str:
        """The API the dashboard calls: the configured URL, else this server at the address the
        request came in on (its socket's, never the Host header, which the client writes)."""
        if self.api_url:
            return self.api_url
        return client.own_url(request.scope["scheme"], request.scope.get("server"))

    def session(self, request: Request) -> Session:
        found = getattr(request.state, "dashboard_session", None)
        if found is None:
            found = self.sessions.open(request.cookies.get(COOKIE)) or Session()
            request.state.dashboard_session = found
        return found

    def api(self, request: Request, session: Session) -> client.API:
        return client.API(self.http, self.base_url(request), session.token, request_id_var.get())

    def store(self, request: Request, response: Response, session: Session) -> Response:
        response.set_cookie(
            COOKIE,
            self.sessions.seal(session),
            path=PATH,
            httponly=True,
            samesite="lax",
            secure=cookie_secure(self.cookie_secure, request.url.scheme, _server_host(request)),
        )
        response.headers.update(PAGE_HEADERS)
        return response

    def render(self, request: Request, name: str, code: int = 200, **context: Any) -> Response:
        session = self.session(request)
        flash, session.flash = session.flash, ""
        response = templates.TemplateResponse(
            request,
            name,
            {
                "s": session,
                "flash": flash,
                "request_id": request_id_var.get(),
                "path": request.url.path,
                **context,
            },
            status_code=code,
        )
        return self.store(request, response, session)

    def redirect(self, request: Request, to: str, flash: str = "", error: bool = False) -> Response:
        session = self.session(request)
        if flash:
            session.flash = ("error:" if error else "") + flash
        return self.store(request, RedirectResponse(PATH + to, status_code=303), session)


def _server_host(request: Request) -> str | None:
    """The address the request's connection arrived at (its socket's, not the Host header)."""
    server = request.scope.get("server")
    return str(server[0]) if server else None


async def form_data(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the edge has bounded the body already)."""
    body = await request.body()
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise Refused(400, "The form is not valid UTF-8.") from exc


def build_router(dash: Dashboard) -> APIRouter:
    router = APIRouter(prefix=PATH, include_in_schema=False)  # pages, not API operations

    def user(request: Request) -> Session:
        session = dash.session(request)
        if not session.signed_in:
            raise SignIn()
        return session

    def operator(session: Session = Depends(user)) -> Session:
        if not session.is_admin:
            raise Refused(403, "Only administrators may open the operator pages.")
        return session

    def posted(request: Request, form: dict[str, str] = Depends(form_data)) -> dict[str, str]:
        session = dash.session(request)
        if not session.csrf_matches(form.get("csrf_token") or request.headers.get("x-csrf-token")):
            raise Refused(403, "The form's CSRF token is missing or does not match this session.")
        return form

    def back(request: Request, to: str, exc: APIError) -> Response:
        """The API refused a form: back to `to`, with its refusal shown as an error."""
        return dash.redirect(request, to, f"{exc.status}: {exc.message}", True)

    def act(
        request: Request, session: Session, done: str, then: str, call: Callable[[client.API], object]
    ) -> Response:
        """Run one API call for a POST, then redirect: to `then` on success (with `done`, or the
        message the call returned), back otherwise."""
        try:
            said = call(dash.api(request, session))
        except APIError as exc:
            if exc.status == 401:
                raise SignIn() from exc
            return back(request, then, exc)
        return dash.redirect(request, then, said if isinstance(said, str) else done)

    def on_form(
        path: str,
        name: str,
        then: str,
        done: str,
        call: Callable[[client.API, str, dict[str, str]], object],
        who: Callable[..., Session] = user,
    ) -> None:
        """Route POST `path`, whose one path parameter is the id of the thing the form is about:
        `call(api, id, form)` through `act`, then to `then` with `done` ("{}" in it: the id; "":
        the message `call` returned). `who`: `user`, or `operator` for an operator's form."""

        def handler(
            request: Request, form: dict[str, str] = Depends(posted), session: Session = Depends(who)
        ) -> Response:
            (ident,) = request.path_params.values()
            return act(request, session, done.format(ident), then, lambda api: call(api, ident, form))

        router.add_api_route(path, handler, methods=["POST"], name=name)

    def deleting(
        path: str, name: str, then: str, done: str, delete: Callable[[client.API, str], object]
    ) -> None:
        """A form's POST that deletes the thing its path names (see `on_form`)."""
        on_form(path, name, then, done, lambda api, ident, _form: delete(api, ident))

    def page(
        request: Request, name: str, load: Callable[[client.API], dict[str, Any]], session: Session
    ) -> Response:
        try:
            context = load(dash.api(request, session))
        except APIError as exc:
            if exc.status == 401:
                raise SignIn() from exc
            return dash.render(request, "error.html", exc.status, status=exc.status, message=exc.message)
        return dash.render(request, name, **context)

    # -- signing in and out, projects ------------------------------------------------------

    @router.get("")
    @router.get("/")
    def home(request: Request) -> Response:
        return dash.redirect(request, "/servers" if dash.session(request).signed_in else "/login")

    @router.get("/login")
    def login_form(request: Request) -> Response:
        return dash.render(request, "login.html")

    @router.post("/login")
    def login(request: Request, form: dict[str, str] = Depends(posted)) -> Response:
        domain = form.get("domain") or "default"
        try:
            token = client.login(
                dash.http,
                dash.base_url(request),
                request_id_var.get(),
                form.get("username", ""),
                form.get("password", ""),
                form.get("project", ""),
                domain,
            )
        except APIError as exc:
            session = dash.session(request)
            session.flash = f"error:{exc.status}: {exc.message}"
            return dash.render(request, "login.html", exc.status, username=form.get("username", ""))
        session = Session(
            token=token.id,
            user_id=token.user_id,
            user_name=token.user_name,
            domain=domain,
            project_id=token.project_id,
            project_name=token.project_name,
            roles=token.roles,
        )
        request.state.dashboard_session = session  # a new CSRF token with the new session
        if not token.project_id:  # signed in without a project: pick one first
            return dash.redirect(request, "/projects", "Choose a project.")
        return dash.redirect(request, "/servers")

    @router.post("/logout")
    def logout(request: Request, form: dict[str, str] = Depends(posted)) -> Response:
        session = dash.session(request)
        if session.signed_in:
            try:
                dash.api(request, session).revoke()
            except APIError:
                pass  # already expired or revoked: signed out all the same
        request.state.dashboard_session = Session()
        return dash.redirect(request, "/login", "Signed out.")

    @router.get("/projects")
    def project_list(request: Request, session: Session = Depends(user)) -> Response:
        return page(request, "projects.html", lambda api: {"projects": pages.projects(api)}, session)

    @router.post("/projects")
    def switch_project(
        request: Request, form: dict[str, str] = Depends(posted), session: Session = Depends(user)
    ) -> Response:
        try:
            token = pages.switch_project(dash.api(request, session), form.get("project_id", ""))
        except APIError as exc:
            return back(request, "/projects", exc)
        fresh = replace(
            session,
            token=token.id,
            project_id=token.project_id,
            project_name=token.project_name,
            roles=token.roles,
        )
        request.state.dashboard_session = fresh
        return dash.redirect(request, "/servers", f"Now in project {token.project_name}.")

    # -- servers ---------------------------------------------------------------------------

    @router.get("/servers")
    def server_list(request: Request, session: Session = Depends(user)) -> Response:
        def load(api: client.API) -> dict[str, Any]:
            return {"servers": pages.servers(api, session.is_admin)}

        return page(request, "servers.html", load, session)

    @router.get("/servers/rows")
    def server_rows(request: Request, session: Session = Depends(user)) -> Response:
        def load(api: client.API) -> dict[str, Any]:
            return {"servers": pages.servers(api, session.is_admin)}

        return page(request, "_server_rows.html", load, session)

    @router.get("/servers/new")
    def server_form(request: Request, session: Session = Depends(user)) -> Response:
        return page(request, "server_new.html", pages.create_choices, session)

    @router.post("/servers")
    def server_create(
        request: Request, form: dict[str, str] = Depends(posted), session: Session = Depends(user)
    ) -> Response:
        try:
            server_id = pages.create_server(dash.api(request, session), form)
        except APIError as exc:
            return back(request, "/servers/new", exc)
        return dash.redirect(request, f"/servers/{server_id}", f"Creating {form.get('name', '')}.")

    @router.get("/servers/{server_id}")
    def server_show(request: Request, server_id: str, session: Session = Depends(user)) -> Response:
        return page(
            request, "server.html", lambda api: {"server": pages.server_detail(api, server_id)}, session
        )

    @router.get("/servers/{server_id}/status")
    def server_status(request: Request, server_id: str, session: Session = Depends(user)) -> Response:
        """The live status fragment; once the server settles, htmx reloads the whole page."""
        try:
            row = pages.server(dash.api(request, session), server_id)
        except APIError as exc:
            if exc.status == 404:  # deleted meanwhile
                return Response(headers={"HX-Redirect": PATH + "/servers"})
            raise
        response = dash.render(request, "_server_status.html", server=row)
        if row["settled"]:
            response.headers["HX-Refresh"] = "true"
        return response

    @router.post("/servers/{server_id}/action")
    def server_action(
        request: Request,
        server_id: str,
        form: dict[str, str] = Depends(posted),
        session: Session = Depends(user),
    ) -> Response:
        action = form.get("action", "")
        then = "/servers" if action == "delete" else f"/servers/{server_id}"
        return act(
            request,
            session,
            f"{action}: requested.",
            then,
            lambda api: pages.server_action(api, server_id, action, form),
        )

    # -- networks, images, key pairs, server groups, quotas, stock -------------------------------

    @router.get("/networks")
    def network_list(request: Request, session: Session = Depends(user)) -> Response:
        return page(request, "networks.html", pages.networks, session)

    @router.post("/networks")
    def network_create(
        request: Request, form: dict[str, str] = Depends(posted), session: Session = Depends(user)
    ) -> Response:
        done = f"Network {form.get('name', '')} created."
        return act(request, session, done, "/networks", lambda api: pages.create_network(api, form))

    deleting(
        "/networks/{network_id}/delete",
        "network_delete",
        "/networks",
        "Network deleted.",
        pages.delete_network,
    )
    on_form("/security-groups/{group_id}/rules", "rule_add", "/networks", "Rule added.", pages.add_rule)
    deleting(
        "/security-group-rules/{rule_id}/delete",
        "rule_delete",
        "/networks",
        "Rule deleted.",
        pages.delete_rule,
    )

    @router.get("/images")
    def image_list(request: Request, session: Session = Depends(user)) -> Response:
        return page(request, "images.html", lambda api: {"images": pages.images(api)}, session)

    @router.post("/images")
    def image_create(
        request: Request, form: dict[str, str] = Depends(posted), session: Session = Depends(user)
    ) -> Response:
        try:
            image_id = pages.create_image(dash.api(request, session), form)
        except APIError as exc:
            return back(request, "/images", exc)
        return dash.redirect(request, f"/images/{image_id}")

    @router.get("/images/{image_id}")
    def image_show(request: Request, image_id: str, session: Session = Depends(user)) -> Response:
        return page(request, "image.html", lambda api: {"image": pages.image(api, image_id)}, session)

    @router.put("/images/{image_id}/file")
    async def image_upload(request: Request, image_id: str) -> Response:
        """The image's data, streamed on to Glance as it arrives (the edge lets this path
        stream, as Glance's own); the CSRF token comes in the X-CSRF-Token header."""
        session = dash.session(request)
        if not session.signed_in:
            raise SignIn()
        if not session.csrf_matches(request.headers.get("x-csrf-token")):
            raise Refused(403, "The upload's CSRF token is missing or does not match this session.")
        try:
            await dash.api(request, session).upload(
                f"{pages.IMAGE}/images/{pages.q(image_id)}/file",
                request.stream(),
                request.headers.get("content-length"),
            )
        except APIError as exc:
            return JSONResponse({"message": exc.message}, status_code=exc.status)
        return Response(status_code=204)

    deleting("/images/{image_id}/delete", "image_delete", "/images", "Image deleted.", pages.delete_image)

    @router.get("/keypairs")
    def keypair_list(request: Request, session: Session = Depends(user)) -> Response:
        return page(request, "keypairs.html", lambda api: {"keypairs": pages.keypairs(api)}, session)

    @router.post("/keypairs")
    def keypair_create(
        request: Request, form: dict[str, str] = Depends(posted), session: Session = Depends(user)
    ) -> Response:
        try:
            shown = pages.create_keypair(dash.api(request, session), form)
        except APIError as exc:
            return back(request, "/keypairs", exc)
        # A generated private key is shown on this answer only: never stored, never redirected.
        return dash.render(request, "keypairs.html", **shown)

    deleting(
        "/keypairs/{name}/delete", "keypair_delete", "/keypairs", "Key pair {} deleted.", pages.delete_keypair
    )

    @router.get("/server-groups")
    def group_list(request: Request, session: Session = Depends(user)) -> Response:
        def load(api: client.API) -> dict[str, Any]:
            return {
                "groups": pages.server_groups(api),
                "policies": pages.SERVER_GROUP_POLICIES,
                "domains": pages.FAILURE_DOMAINS,
            }

        return page(request, "server_groups.html", load, session)

    @router.post("/server-groups")
    def group_create(
        request: Request, form: dict[str, str] = Depends(posted), session: Session = Depends(user)
    ) -> Response:
        done = f"Server group {form.get('name', '')} created."
        return act(request, session, done, "/server-groups", lambda api: pages.create_server_group(api, form))

    deleting(
        "/server-groups/{group_id}/delete",
        "group_delete",
        "/server-groups",
        "Server group deleted.",
        pages.delete_server_group,
    )

    @router.get("/quotas")
    def quota_page(request: Request, session: Session = Depends(user)) -> Response:
        return page(request, "quotas.html", lambda api: pages.quotas(api, session.project_id), session)

    @router.get("/stock")
    def stock_list(request: Request, session: Session = Depends(user)) -> Response:
        def load(api: client.API) -> dict[str, Any]:
            return {"requests": pages.stock_requests(api), "flavors": pages.flavors(api)}

        return page(request, "stock.html", load, session)

    @router.post("/stock")
    def stock_create(
        request: Request, form: dict[str, str] = Depends(posted), session: Session = Depends(user)
    ) -> Response:
        return act(
            request, session, "Stock requested.", "/stock", lambda api: pages.create_stock_request(api, form)
        )

    # -- operators ---------------------------------------------------------------------------

    @router.get("/admin/hosts")
    def hosts(request: Request, session: Session = Depends(operator)) -> Response:
        def load(api: client.API) -> dict[str, Any]:
            machines = pages.fleet(api)
            chart = charts.bar_chart("vCPUs used per availability zone", charts.capacity_by_zone(machines))
            return {"machines": machines, "chart": chart}

        return page(request, "admin_hosts.html", load, session)

    # The hosts page's toggles: the form to one pages function, which says what was done.
    on_form("/admin/services/{service_id}", "service_toggle", "/admin/hosts", "", pages.set_service, operator)
    on_form(
        "/admin/nodes/{node_id}/maintenance",
        "node_maintenance",
        "/admin/hosts",
        "",
        pages.set_node_maintenance,
        operator,
    )
    on_form("/admin/nodes/{node_id}/power", "node_power", "/admin/hosts", "", pages.set_node_power, operator)

    @router.get("/admin/charts")
    def chart_page(request: Request, session: Session = Depends(operator)) -> Response:
        def load(api: client.API) -> dict[str, Any]:
            machines, scrape, boot = pages.fleet(api), pages.scrape(api), pages.boot_latency(api)
            return {
                "charts": charts.operator_charts(machines, scrape, boot),
                "boot": boot,
                "sample": pages.BOOT_SAMPLE,
            }

        return page(request, "admin_charts.html", load, session)

    @router.get("/admin/canaries")
    def canary_page(request: Request, session: Session = Depends(operator)) -> Response:
        return page(request, "admin_canaries.html", pages.canaries, session)

    @router.get("/admin/rebalancer")
    def rebalancer_page(request: Request, session: Session = Depends(operator)) -> Response:
        return page(request, "admin_rebalancer.html", pages.rebalancer, session)

    @router.post("/admin/rebalancer/plans/{plan_id}")
    def plan_decide(
        request: Request,
        plan_id: str,
        form: dict[str, str] = Depends(posted),
        session: Session = Depends(operator),
    ) -> Response:
        decision = form.get("decision", "")
        done = f"Action plan {'started' if decision == 'start' else 'cancelled'}."
        return act(
            request,
            session,
            done,
            "/admin/rebalancer",
            lambda api: pages.decide_plan(api, plan_id, decision),
        )

    @router.get("/admin/stock")
    def stock_review(request: Request, session: Session = Depends(operator)) -> Response:
        def load(api: client.API) -> dict[str, Any]:
            return {"requests": pages.stock_requests(api, True), "aggregates": pages.stock_aggregates(api)}

        return page(request, "admin_stock.html", load, session)

    @router.post("/admin/stock/{request_id}")
    def stock_decide(
        request: Request,
        request_id: str,
        form: dict[str, str] = Depends(posted),
        session: Session = Depends(operator),
    ) -> Response:
        decision = "approve" if form.get("decision") == "approve" else "reject"
        return act(
            request,
            session,
            f"Stock request {decision}d.",
            "/admin/stock",
            lambda api: pages.decide_stock_request(api, request_id, decision, form.get("reason", "")),
        )

    return router


def error_page(status: int, message: str) -> Response:
    """The error page outside any session (no navigation): what kumo/api/errors.py answers for
    /dashboard paths, whatever failed before or around a route."""
    body = templates.get_template("error.html").render(
        s=Session(), flash="", request_id=request_id_var.get(), path="", status=status, message=message
    )
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the dashboard (routes, static files, its error pages) into the app."""
    dash = Dashboard(settings)
    weakref.finalize(app, dash.http.close)  # its pooled connections go with the app
    for route in build_router(dash).routes:
        app.router.routes.append(route)
    app.mount(PATH + "/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
    errors.add_error_page(PATH, error_page)  # an unknown page, a wrong method, a crash: HTML

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return dash.render(request, "error.html", exc.status, status=exc.status, message=exc.message)

    @app.exception_handler(SignIn)
    async def _sign_in(request: Request, exc: SignIn) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": PATH + "/login"})
        return dash.redirect(request, "/login")

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Response:
        return dash.render(request, "error.html", exc.status, status=exc.status, message=exc.message)
