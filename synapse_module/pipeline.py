"""The one place where Parta's Synapse callbacks are registered, and their order.

Each feature implements the callbacks it cares about as methods named after them
(``check_event_allowed``, ``user_may_invite`` …); :func:`register` registers each callback
with Synapse once and, where several features answer, asks them in the order of
:data:`CALLBACK_ORDER`:

- ``check_event_allowed``: the roster first (who may send what where: structure state,
  managed state, school membership, "only staff post here"), then the consents a
  school enforces (a student without consent to communication reads but does not post;
  without photos, no pictures, and their member events lose the avatar by replacement,
  which ends the pipeline: later features pass member events), then content (is a
  document, article or poll well-formed, may this person post it). So a refusal by the
  roster is what a person sees even when the event is also malformed; the first refusal
  (``False`` or an error raised) ends the pipeline, and content's sanitized replacement
  is returned as Synapse's. Homework comes last (its own block's schema, class chat,
  who sets homework), then read confirmations (who may ask for one), and quiet hours
  last: only a message every other feature allows is held for the morning (and checked
  again when it is sent).
- ``on_new_event``: content's indexing, then homework's and confirmations'; every
  feature hears it. Registered only on the process that indexes
  (``content.indexer_worker``, :func:`third_party_rules`).
- spam checks on rooms (``user_may_create_room``, ``user_may_invite``,
  ``user_may_join_room``): the roster, then the broadcast recorder's "uploads only"; the
  first refusal wins.
- every other callback has one feature behind it (see the table).

``tests/test_pipeline.py`` asserts this table and, against a real Synapse, that the
roster's refusal comes before content's validation error.
"""

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from synapse.module_api import NOT_SPAM, EventBase, ModuleApi, StateMap

# callback name -> the features that answer it, in the order they are asked.
CALLBACK_ORDER: Final[Mapping[str, tuple[str, ...]]] = {
    # third-party event rules
    "check_event_allowed": (
        "roster",
        "consents",
        "content",
        "homework",
        "confirmations",
        "quiet_hours",
    ),
    "on_new_event": ("content", "homework", "confirmations"),
    "on_create_room": ("roster",),
    # spam checker
    "user_may_create_room": ("roster", "broadcasts"),
    "user_may_invite": ("roster", "broadcasts"),
    "user_may_join_room": ("roster", "broadcasts"),
    "user_may_publish_room": ("roster",),
    "check_event_for_spam": ("broadcasts",),
    "check_username_for_spam": ("roster",),
    "check_media_file_for_spam": ("content",),
    # media repository
    "get_media_config_for_user": ("content",),
    "is_user_allowed_to_upload_media_of_size": ("content",),
    # rate limits, password auth, account validity
    "get_ratelimit_override_for_user": ("roster",),
    "check_password": ("roster",),
    "on_user_login": ("roster",),
}

Handler = Callable[..., Awaitable[Any]]


def handlers(features: Mapping[str, object], callback: str) -> list[Handler]:
    """The methods answering ``callback``, in :data:`CALLBACK_ORDER`."""
    found: list[Handler] = [getattr(features[name], callback) for name in CALLBACK_ORDER[callback]]
    return found


def _chain_event_rules(chain: list[Handler]) -> Handler:
    if len(chain) == 1:
        return chain[0]

    async def check_event_allowed(
        event: EventBase, state_events: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        for handler in chain:
            allowed, replacement = await handler(event, state_events)
            if not allowed:
                return False, None
            if isinstance(replacement, dict):
                return True, replacement
        return True, None

    return check_event_allowed


def _first_refusal(chain: list[Handler]) -> Handler:
    if len(chain) == 1:
        return chain[0]

    async def first_refusal(*args: Any) -> Any:
        for handler in chain:
            verdict = await handler(*args)
            if verdict != NOT_SPAM:
                return verdict
        return NOT_SPAM

    # Synapse reads a callback's signature to choose its arguments (user_may_create_room
    # with or without room_config): show it the features' own.
    first_refusal.__signature__ = inspect.signature(chain[0])  # type: ignore[attr-defined]
    return first_refusal


def _every(chain: list[Handler]) -> Handler:
    """A notification every feature hears (``on_new_event``), in order."""
    if len(chain) == 1:
        return chain[0]

    async def every(*args: Any) -> None:
        for handler in chain:
            await handler(*args)

    return every


def _only(features: Mapping[str, object], callback: str) -> Handler:
    """A callback one feature answers (its result cannot be combined with another's)."""
    (handler,) = handlers(features, callback)
    return handler


def third_party_rules(
    features: Mapping[str, object], indexes_here: bool
) -> dict[str, Handler | None]:
    """The event-rules callbacks to register. ``on_new_event`` only on the process that
    indexes (``content.indexer_worker``; its hearers do nothing elsewhere): Synapse calls
    it for every event on every process that hears of it, after reading the room's whole
    current state to hand over — a school-wide room's thousands of member events, for
    each message, on every worker — and it wakes nobody's /sync until that returns."""
    return {
        "check_event_allowed": _chain_event_rules(handlers(features, "check_event_allowed")),
        "on_new_event": _every(handlers(features, "on_new_event")) if indexes_here else None,
        "on_create_room": _only(features, "on_create_room"),
    }


def register(api: ModuleApi, features: Mapping[str, object], indexes_here: bool) -> None:
    """Register every callback once, each dispatching in :data:`CALLBACK_ORDER`
    (``on_new_event`` only where ``indexes_here``)."""
    api.register_third_party_rules_callbacks(**third_party_rules(features, indexes_here))
    api.register_spam_checker_callbacks(
        user_may_create_room=_first_refusal(handlers(features, "user_may_create_room")),
        user_may_invite=_first_refusal(handlers(features, "user_may_invite")),
        user_may_join_room=_first_refusal(handlers(features, "user_may_join_room")),
        user_may_publish_room=_only(features, "user_may_publish_room"),
        check_event_for_spam=_first_refusal(handlers(features, "check_event_for_spam")),
        check_media_file_for_spam=_first_refusal(handlers(features, "check_media_file_for_spam")),
        # True hides the user from the searcher: one feature decides.
        check_username_for_spam=_only(features, "check_username_for_spam"),
    )
    api.register_media_repository_callbacks(
        get_media_config_for_user=_only(features, "get_media_config_for_user"),
        is_user_allowed_to_upload_media_of_size=_only(
            features, "is_user_allowed_to_upload_media_of_size"
        ),
    )
    api.register_ratelimit_callbacks(
        get_ratelimit_override_for_user=_only(features, "get_ratelimit_override_for_user")
    )
    api.register_password_auth_provider_callbacks(
        auth_checkers={("m.login.password", ("password",)): _only(features, "check_password")},
    )
    api.register_account_validity_callbacks(on_user_login=_only(features, "on_user_login"))
