"""Who may sign in through OIDC: an email domain rule and a required claim, and
which claim makes an admin. Plain functions over the claims dict."""

from __future__ import annotations

from typing import Any

from codecshift.config import InfraSettings


class SignInRefused(Exception):
    """The provider vouched for someone this dashboard does not let in; says why."""


def claim_matches(claims: dict[str, Any], rule: str) -> bool:
    """``NAME=VALUE``: the claim equals VALUE, or is a list containing it."""
    name, _, wanted = rule.partition("=")
    value = claims.get(name.strip())
    wanted = wanted.strip()
    if isinstance(value, list | tuple | set):
        return any(_same(item, wanted) for item in value)
    return value is not None and _same(value, wanted)


def _same(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == wanted.lower()
    return str(value) == wanted


def _verified(claims: dict[str, Any]) -> bool:
    flag = claims.get("email_verified")
    return flag is True or (isinstance(flag, str) and flag.lower() == "true")


def check_sign_in(claims: dict[str, Any], settings: InfraSettings) -> None:
    """Raise SignInRefused unless the domain rule and the claim rule both let these claims in."""
    if settings.oidc_allowed_domains:
        email = str(claims.get("email") or "")
        if "@" not in email:
            raise SignInRefused("the provider sent no email address, and only some domains may sign in")
        if not _verified(claims):
            raise SignInRefused(f"the provider has not verified {email}")
        domain = email.rsplit("@", 1)[1].lower()
        allowed = {item.lower().lstrip("@") for item in settings.oidc_allowed_domains}
        if domain not in allowed:
            raise SignInRefused(f"{domain} is not among the domains allowed to sign in")
    if settings.oidc_required_claim and not claim_matches(claims, settings.oidc_required_claim):
        name = settings.oidc_required_claim.partition("=")[0]
        raise SignInRefused(f"the {name} claim does not allow this account to sign in")


def display_name(claims: dict[str, Any]) -> str:
    for key in ("preferred_username", "email", "name", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "user"
