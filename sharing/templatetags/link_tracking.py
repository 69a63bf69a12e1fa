"""`{{ link|recipient_state }}`: what a link's recipient did, as link_tracking tells it."""

from django import template

from sharing.models import ShareLink
from sharing.services import link_tracking

register = template.Library()


@register.filter
def recipient_state(link: ShareLink) -> link_tracking.RecipientState:
    return link_tracking.recipient_state(link)
