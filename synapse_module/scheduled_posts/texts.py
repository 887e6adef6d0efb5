"""What a person reads about scheduled posts (the catalogue's ``scheduled_posts.*``)."""

from typing import Final

from parta_common.messages import Message

NO_SUCH_POST: Final = Message("scheduled_posts.no_such_post")
NOT_YOURS_TO_SEND: Final = Message("scheduled_posts.not_yours_to_send")
