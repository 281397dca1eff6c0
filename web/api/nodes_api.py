"""Nodes: registration and heartbeats (node keys), listing and control (people)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify
from sqlalchemy import select

from codecshift import settings_store
from codecshift.models import REPLACING, Job, Node
from codecshift.services import nodes
from codecshift.services.dispatcher import node_is_fresh
from codecshift.services.jobs import node_settings
from codecshift.services.nodes import cancel_requests_for
from codecshift.version import read_version
from web.api import api_blueprint as bp
from web.api.errors import ApiError
from web.api.publishing import publisher, request_dispatch
from web.api.routing import api_route
from web.api.schemas import Heartbeat, NodeAction, NodeRegistration
from web.extensions import db
from web.security import require_node


def node_json(node: Node, offline_after: int | None = None) -> dict[str, Any]:
    from codecshift.models import utcnow

    fresh = offline_after is None or node_is_fresh(node, utcnow(), offline_after)
    version = read_version()
    return {
        "name": node.name, "hostname": node.hostname, "version": node.version,
        "version_mismatch": node.version != version, "capabilities": node.capabilities,
        "queues": node.queues, "concurrency": node.concurrency,
        "status": node.status if fresh else "offline", "desired_state": node.desired_state,
        "current_jobs": node.current_jobs, "path_mappings": node.path_mappings,
        "last_heartbeat": node.last_heartbeat.isoformat() if node.last_heartbeat else None,
        "registered_at": node.registered_at.isoformat() if node.registered_at else None,
    }


def _reply(node: Node) -> dict[str, Any]:
    session = db()
    values = settings_store.load_all(session)
    return {"node": node_json(node), "desired_state": node.desired_state,
            "cancel_jobs": cancel_requests_for(session, node), "recover_jobs": nodes.recoverable_jobs(session, node),
            "settings": node_settings(values),
            "dashboard_version": read_version()}


@api_route(bp, "/nodes/register", ("POST",), summary="Register a transcode node", role="node", tag="nodes",
           body=NodeRegistration)
def register_node(body: NodeRegistration) -> Any:
    """A node announces its version, capabilities, queues and concurrency at start. A node
    key is bound to the first name it registers and can act only as that node."""
    require_node(body.name, binding=True)
    try:
        principal = g.get("principal")
        owner = principal.key_id if principal is not None and principal.role == "node" else None
        node = nodes.register(db(), nodes.Registration(**body.model_dump()), owner_key_id=owner)
    except nodes.NodeError as exc:
        raise ApiError(400, "validation_error", str(exc), field="queues") from None
    request_dispatch()
    return jsonify(_reply(node))


@api_route(bp, "/nodes/<name>/heartbeat", ("POST",), summary="Node heartbeat", role="node", tag="nodes",
           body=Heartbeat, responses={404: "Unknown node: register again"})
def node_heartbeat(name: str, body: Heartbeat) -> Any:
    """Keeps the node online; the answer carries its desired state and cancel requests."""
    require_node(name)
    try:
        node = nodes.heartbeat(db(), name, body.status, [item.model_dump() for item in body.current_jobs])
    except nodes.NodeError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return jsonify(_reply(node))


@api_route(bp, "/nodes/<name>/replacing", ("GET",), summary="A node's interrupted replacements",
           role="node", tag="nodes")
def node_replacing(name: str) -> Any:
    """Jobs this node left in `replacing`, with their journals, for recovery at start."""
    require_node(name)
    jobs = db().scalars(select(Job).where(Job.node == name, Job.status == REPLACING))
    return jsonify({"jobs": [{"id": job.id, "attempt": job.attempt, "journal": job.journal} for job in jobs]})


@api_route(bp, "/nodes", ("GET",), summary="List nodes", role="read", tag="nodes")
def list_nodes() -> Any:
    session = db()
    offline_after = settings_store.get(session, "node_offline_after_seconds")
    rows = session.scalars(select(Node).order_by(Node.name))
    return jsonify({"items": [node_json(node, offline_after) for node in rows]})


@api_route(bp, "/nodes/<name>", ("GET",), summary="One node", role="read", tag="nodes")
def get_node(name: str) -> Any:
    session = db()
    try:
        node = nodes.get_node(session, name)
    except nodes.NodeError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return jsonify(node_json(node, settings_store.get(session, "node_offline_after_seconds")))


@api_route(bp, "/nodes/<name>/control", ("POST",), summary="Pause, resume, drain or quit a node",
           role="admin", tag="nodes", body=NodeAction, status=202)
def control_node(name: str, body: NodeAction) -> Any:
    """Stored as the node's desired state and sent at once through Celery's remote control."""
    try:
        node = nodes.control(db(), publisher(), name, body.action)
    except nodes.NodeError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    if body.action == "resume":
        request_dispatch()
    return jsonify(node_json(node)), 202
