"""One's own account: name and email address (passwords go through Django's own views)."""

from django.contrib.auth import get_user_model
from django.db import transaction

from sharing import audit
from sharing.audit import Actor
from sharing.models import Outcome

PROFILE_FIELDS = ("first_name", "last_name", "email")
FIELD_LABELS = {"first_name": "first name", "last_name": "last name", "email": "email address"}


def profile_update(*, actor: Actor, first_name: str, last_name: str, email: str) -> list[str]:
    """Save the actor's own name and email address; return the fields that changed."""
    user = get_user_model().objects.get(pk=actor.user.pk)
    wanted = {"first_name": first_name, "last_name": last_name, "email": email}
    changed = [name for name in PROFILE_FIELDS if getattr(user, name) != wanted[name]]
    if not changed:
        return []
    was_email = user.email
    for name in changed:
        setattr(user, name, wanted[name])
    # The email address is where password resets go: the trail keeps the old and the new one.
    parts = [
        f"email address “{was_email}” → “{email}”" if name == "email" else FIELD_LABELS[name]
        for name in changed
    ]
    with transaction.atomic():
        user.save(update_fields=changed)
        audit.record(
            actor=actor,
            action="account.profile",
            outcome=Outcome.SUCCESS,
            message=f"Changed {', '.join(parts)}.",
        )
    return changed
