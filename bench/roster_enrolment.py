"""Creating a school with 30 classes and enrolling N students through the module's API,
against the same memberships made with plain client-API calls on the same kind of
Synapse without the module, in one run.

    python -m bench.roster_enrolment [--sizes 250 500 1000] [--baseline 250]
"""

import argparse
import asyncio

from bench.synapse_tools import Stopwatch, call, homeserver, login_as, make_users, session
from tests.harness import RunningHomeserver, User

API = "/_synapse/client/parta/v1"
CLASSES = 30
CHUNK = 250


async def school_with_classes(
    hs: RunningHomeserver, operator: User, name: str
) -> dict[str, object]:
    async with session(operator.access_token) as s:
        school = await call(s, "POST", f"{hs.base_url}{API}/schools", {"name": name}, ok=(201,))
        sid = school["school_id"]
        classes = []
        for i in range(CLASSES):
            grade, letter = 1 + i // 3, "АБВ"[i % 3]
            cls = await call(
                s,
                "POST",
                f"{hs.base_url}{API}/schools/{sid}/classes",
                {"grade": grade, "letter": letter, "year": "2026/27"},
                ok=(201,),
            )
            classes.append(cls["class_id"])
    return {"school_id": sid, "classes": classes}


async def enrol(
    hs: RunningHomeserver, operator: User, school: dict[str, object], ids: list[str]
) -> None:
    classes = school["classes"]
    assert isinstance(classes, list)
    async with session(operator.access_token) as s:
        for start in range(0, len(ids), CHUNK):
            members = [
                {"user_id": u, "roles": ["student"], "classes": [classes[(start + i) % CLASSES]]}
                for i, u in enumerate(ids[start : start + CHUNK])
            ]
            await call(
                s,
                "POST",
                f"{hs.base_url}{API}/schools/{school['school_id']}/members/batch",
                {"members": members},
                ok=(200,),
            )


async def plain_structure(
    hs: RunningHomeserver, admin: User
) -> tuple[list[str], list[tuple[str, str]]]:
    """The same rooms without the module: school space + 3 rooms, a space + chat per class."""
    async with session(admin.access_token) as s:
        url = f"{hs.base_url}/_matrix/client/v3/createRoom"
        school = [
            (await call(s, "POST", url, {"name": n, "preset": "private_chat"}))["room_id"]
            for n in ("Школа", "Объявления", "Документы", "Статьи")
        ]
        classes = []
        for i in range(CLASSES):
            space = await call(s, "POST", url, {"name": f"К{i}", "preset": "private_chat"})
            chat = await call(s, "POST", url, {"name": f"Ч{i}", "preset": "private_chat"})
            classes.append((space["room_id"], chat["room_id"]))
    return school, classes


async def plain_enrol(
    hs: RunningHomeserver,
    admin: User,
    ids: list[str],
    school: list[str],
    classes: list[tuple[str, str]],
) -> None:
    """Invite + join through the client API, as a script of an administrator would."""
    base = f"{hs.base_url}/_matrix/client/v3/rooms"
    sem = asyncio.Semaphore(4)
    async with session(admin.access_token) as s:

        async def one(i: int, user_id: str) -> None:
            async with sem:
                token = await login_as(hs, admin, user_id)
                rooms = [*school, *classes[i % CLASSES]]
                async with session(token) as me:
                    for room in rooms:
                        await call(s, "POST", f"{base}/{room}/invite", {"user_id": user_id})
                        await call(me, "POST", f"{base}/{room}/join", {})

        await asyncio.gather(*(one(i, u) for i, u in enumerate(ids)))


async def main(sizes: list[int], baseline: int) -> None:
    with homeserver(True) as hs:
        operator = hs.register("op", admin=True)
        print(f"backend: {hs.backend}")
        for n in sizes:
            ids = await make_users(hs, operator, f"s{n}x", n)
            watch = Stopwatch()
            school = await school_with_classes(hs, operator, f"Школа на {n}")
            created = watch.seconds
            watch = Stopwatch()
            await enrol(hs, operator, school, ids)
            took = watch.seconds
            print(
                f"Parta: school + {CLASSES} classes {created:6.1f} s; enrol {n:5d} students "
                f"{took:7.1f} s = {1000 * took / n:6.1f} ms/student"
            )
    if baseline:
        with homeserver(False) as plain:
            admin = plain.register("admin", admin=True)
            ids = await make_users(plain, admin, "p", baseline)
            watch = Stopwatch()
            school_rooms, class_rooms = await plain_structure(plain, admin)
            created = watch.seconds
            watch = Stopwatch()
            await plain_enrol(plain, admin, ids, school_rooms, class_rooms)
            took = watch.seconds
            print(
                f"plain client API: rooms {created:6.1f} s; {baseline:5d} students "
                f"{took:7.1f} s = {1000 * took / baseline:6.1f} ms/student"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--baseline", type=int, default=250)
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.baseline))
