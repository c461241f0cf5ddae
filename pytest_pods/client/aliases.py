"""Image aliases (issue 17): official image names served by local images, explicitly.

On a machine without Docker Hub, ``PostgresContainer("postgres:16")`` finds no ``postgres:16``.
An alias says which local image stands in for a name: ``postgres:16=pytest-pods/postgres:15``.
The ``official`` preset maps the common official names of the services pytest-pods ships
(``postgres``, ``postgres:N``, ``redis``, ``redis:N``, with or without ``docker.io/library/``)
to their recipe images, which are built on first use.

A substitution is never silent: the resolver reports each name it substitutes, once, with both
names and what the local image provides (``postgres:16 -> pytest-pods/postgres:15 (PostgreSQL 15
from Debian 12 (bookworm))``). Both faces use it, below them: the plugin's session client and
the daemon's client get their ``images`` and ``containers`` wrapped by :meth:`Resolver.install`,
so every ``create``/``run``/``pull``/``get``/``inspect`` of a name goes through one lookup.

Specs, as the options and ``PODS_IMAGE_ALIASES`` take them: words separated by commas or
whitespace, each either ``NAME=IMAGE`` or the name of a preset (``official``); ``none`` clears
what came before.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_pods.engine.image.reference import parse_reference
from pytest_pods.errors import ImageNotFoundError, InvalidArgumentError, PodsError

__all__ = ["ENV", "PRESETS", "RECIPE_IMAGES", "ImageAliases", "Resolver", "recipe_maker"]

ENV = "PODS_IMAGE_ALIASES"

#: The images of the shipped service recipes (``plugin/recipes/<service>``), by service.
RECIPE_IMAGES = {"postgres": "pytest-pods/postgres:15", "redis": "pytest-pods/redis:7",
                 "nginx": "pytest-pods/nginx:1.22", "rabbitmq": "pytest-pods/rabbitmq:3.10",
                 "mariadb": "pytest-pods/mariadb:10.11", "memcached": "pytest-pods/memcached:1.6",
                 "chromium": "pytest-pods/chromium:bookworm",
                 "mosquitto": "pytest-pods/mosquitto:2.0",
                 "nats": "pytest-pods/nats:2.9",
                 "etcd": "pytest-pods/etcd:3.4",
                 "openldap": "pytest-pods/openldap:2.5",
                 "s3": "pytest-pods/s3:5.1",
                 "sftp": "pytest-pods/sftp:9.2",
                 "smtp": "pytest-pods/smtp:1.4",
                 "registry": "pytest-pods/registry:2.8"}
#: The recipes' directory. A path, not an import: the client sits below the plugin, and only
#: the Dockerfiles are wanted here.
RECIPES = Path(__file__).resolve().parent.parent / "plugin" / "recipes"

#: The tags of an official image that a preset serves: ``latest``, a version (``16``, ``16.4``),
#: nginx's channels (``stable``, ``mainline``), the Debian or Alpine variants of one
#: (``16-bookworm``, ``7-alpine``, ``1.25.4-alpine-slim``), and a variant alone, which is the
#: latest version's (``alpine``, ``alpine3.20``, ``bookworm``, ``alpine-slim``: testcontainers'
#: own tests run ``nginx:alpine-slim``).
_VARIANT = r"(bookworm|bullseye|trixie|alpine([0-9]+(\.[0-9]+)*)?(-slim)?)"
_VERSION_TAG = re.compile(rf"((latest|stable|mainline|[0-9]+(\.[0-9]+)*)(-{_VARIANT})?|{_VARIANT})")

#: Presets: official repository -> local image.
PRESETS: dict[str, dict[str, str]] = {
    "official": {"postgres": RECIPE_IMAGES["postgres"], "redis": RECIPE_IMAGES["redis"],
                 "nginx": RECIPE_IMAGES["nginx"], "rabbitmq": RECIPE_IMAGES["rabbitmq"],
                 # mysql:8 too: MariaDB 10.11 speaks its protocol and honours its MYSQL_* variables
                 "mariadb": RECIPE_IMAGES["mariadb"], "mysql": RECIPE_IMAGES["mariadb"],
                 # Selenium's own images (a project's, not official ones): only the tags of _USER_TAGS;
                 # the recipe serves their WebDriver contract with Debian's Chromium, headless
                 "selenium/standalone-chrome": RECIPE_IMAGES["chromium"],
                 "selenium/standalone-chromium": RECIPE_IMAGES["chromium"],
                 "memcached": RECIPE_IMAGES["memcached"],
                 "eclipse-mosquitto": RECIPE_IMAGES["mosquitto"], "nats": RECIPE_IMAGES["nats"],
                 # registry:2 (Distribution 2.8); registry:3 is Distribution 3, whose API v2 and
                 # REGISTRY_* variables are the same for what tests push and pull
                 "registry": RECIPE_IMAGES["registry"],
                 # a Docker Hub user's image, not an official one: only the tags of _USER_TAGS
                 "atmoz/sftp": RECIPE_IMAGES["sftp"],
                 # vendors' images, there being no official one: bitnami's (the maintained one) and
                 # osixia's; the recipe takes the variables of both
                 "bitnami/openldap": RECIPE_IMAGES["openldap"], "osixia/openldap": RECIPE_IMAGES["openldap"]},
}

#: The images of Docker Hub users (not official ones) a preset serves, and the tags it serves of
#: each: their tags are names (atmoz/sftp) or versions of the vendor's own (osixia/openldap), so
#: only those listed.
_USER_TAGS: dict[str, frozenset[str]] = {"atmoz/sftp": frozenset({"latest", "alpine", "debian"}),
                                         "bitnami/openldap": frozenset({"latest", "2", "2.5", "2.6"}),
                                         "osixia/openldap": frozenset({"latest", "1.5.0", "1.4.0"})}


def _key(name: str) -> str:
    """The normalized reference a name stands for: ``docker.io/library/postgres:16`` and
    ``postgres:16`` are one name, and ``postgres`` is ``postgres:latest``."""
    ref = parse_reference(name)
    return ref.familiar


# Selenium's tags pin a release and its build date (4.27.0-20241225): only these are served, a
# pinned one takes an explicit alias (selenium/standalone-chrome:4.27.0-20241225=pytest-pods/chromium:bookworm)
_USER_TAGS.update(dict.fromkeys(("selenium/standalone-chrome", "selenium/standalone-chromium"),
                                frozenset({"latest", "4"})))


@dataclass(frozen=True)
class ImageAliases:
    """What the user set: explicit ``NAME -> IMAGE`` aliases (normalized names) and presets."""

    explicit: Mapping[str, str] = field(default_factory=dict)
    presets: tuple[str, ...] = ()

    @classmethod
    def parse(cls, specs: Iterable[str]) -> ImageAliases:
        """The aliases of ``specs`` (later words win; ``none`` clears).

        :raises InvalidArgumentError: ``image alias 'x': <why>`` for a malformed word
        """
        explicit: dict[str, str] = {}
        presets: list[str] = []
        for spec in specs:
            for word in re.split(r"[\s,]+", spec.strip()):
                if not word:
                    continue
                if word == "none":
                    explicit.clear()
                    presets.clear()
                elif "=" in word:
                    name, _, target = word.partition("=")
                    try:
                        explicit[_key(name)] = parse_reference(target).familiar
                    except InvalidArgumentError as exc:
                        raise InvalidArgumentError(f"image alias {word!r}: {exc}") from None
                elif word in PRESETS:
                    if word not in presets:
                        presets.append(word)
                else:
                    raise InvalidArgumentError(
                        f"image alias {word!r}: neither NAME=IMAGE nor a preset ({', '.join(PRESETS)})")
        return cls(explicit, tuple(presets))

    def __bool__(self) -> bool:
        return bool(self.explicit or self.presets)

    def target(self, name: str) -> tuple[str, bool] | None:
        """The local image that stands in for ``name`` and whether an explicit alias says so
        (else a preset), or None (no alias: the name as it is)."""
        try:
            ref = parse_reference(name)
        except InvalidArgumentError:
            return None
        key = ref.familiar
        if key in self.explicit:
            return self.explicit[key], True
        user_tags = _USER_TAGS.get(ref.familiar_repository)
        if ref.digest or ref.domain != "docker.io" or not (ref.path.startswith("library/") or user_tags):
            return None  # a digest names content; other registries' names are not official images
        tag = ref.tag or "latest"
        for preset in self.presets:
            local = PRESETS[preset].get(ref.familiar_repository)
            if local is not None and (tag in user_tags if user_tags else _VERSION_TAG.fullmatch(tag)):
                return local, False
        return None

    def table(self) -> list[tuple[str, str]]:
        """(name, image) rows as a user reads them: explicit aliases, then the presets."""
        rows = sorted(self.explicit.items())
        for preset in self.presets:
            for repo, local in PRESETS[preset].items():
                tags = ", ".join(f"{repo}:{t}" for t in sorted(_USER_TAGS.get(repo, ())))
                rows.append((f"{repo}, {tags or f'{repo}:N'} (preset {preset})", local))
        return rows


def recipe_maker(client: Any) -> Callable[[str], bool]:
    """``make(image)`` for a client of its own (the daemon): builds a shipped recipe's image
    (a no-change rebuild is a cache hit); False for an image that is no recipe's."""
    def make(image: str) -> bool:
        for service, tag in RECIPE_IMAGES.items():
            if _key(tag) == _key(image):
                client.images.build(RECIPES / service, tag=tag)
                return True
        return False

    return make


class Resolver:
    """The aliases bound to one client: resolves a name to its stand-in, makes the stand-in
    when it is missing (``make``), and reports each substitution once (``report``)."""

    def __init__(self, aliases: ImageAliases, report: Callable[[str], None],
                 make: Callable[[str], bool] | None = None) -> None:
        self.aliases = aliases
        self.report = report
        self.make = make
        self.used: dict[str, str] = {}  # name -> the line reported for it
        self._images: Any = None
        self.local = False  # installed on a local client (its builds take base_image)
        self._lock = threading.RLock()

    def install(self, client: Any) -> Any:
        """Wrap ``client.images`` and ``client.containers`` (a local Client or a RemoteClient) so
        that the names they are given are resolved first; returns the client."""
        if not isinstance(client.images, _Images):
            self._images = client.images
            self.local = getattr(client, "root", None) is not None  # a RemoteClient's root is None
            client.images = _Images(client.images, self)
            client.containers = _Containers(client.containers, self)
        return client

    def resolve(self, name: str, progress: Callable[[Any], None] | None = None) -> str:
        """``name``'s stand-in (made if missing, reported the first time), or ``name`` itself.

        :raises ImageNotFoundError: the stand-in is not there and cannot be made
        """
        found = self.aliases.target(name) if isinstance(name, str) else None
        if found is None:
            return name
        target, explicit = found
        with self._lock:  # one build of a stand-in; one report of a name
            if not explicit and name not in self.used:
                try:  # a preset stands in for what is missing: the real image, where there is one, wins
                    self._images.get(name)
                    return name
                except ImageNotFoundError:
                    pass
            # a preset's stand-in is made from its recipe once per resolver even when the tag exists
            # (a cache hit when the recipe is unchanged): an image from an older recipe is not used
            refresh = not explicit and name not in self.used and self.make is not None
            try:
                if refresh:
                    raise ImageNotFoundError(target)
                img = self._images.get(target)
            except ImageNotFoundError:
                if progress is not None:
                    progress({"status": f"{name}: building its stand-in {target} from the pytest-pods recipe"})
                try:
                    made = self.make is not None and self.make(target)
                except PodsError:
                    raise
                except OSError as exc:  # a build that failed on the way: one line, both names
                    raise PodsError(f"image alias {name}: make {target}: {exc}") from None
                if not made:
                    raise ImageNotFoundError(f"No such image: {target} (the image alias of {name})") from None
                img = self._images.get(target)
            if name not in self.used:
                line = f"image alias: {name} -> {target} ({describe(img)})"
                self.used[name] = line
                self.report(line)
        return target


def describe(img: Any) -> str:
    """What an image provides, for the substitution line: its ``org.pytest-pods.provides`` label
    (the recipes set it: "PostgreSQL 15 from Debian 12 (bookworm)"), else its title, else its id."""
    cfg = (getattr(img, "config", None) or {}).get("config") or {}
    labels = cfg.get("Labels") or {}
    text = labels.get("org.pytest-pods.provides") or labels.get("org.opencontainers.image.title")
    return str(text) if text else f"image {str(getattr(img, 'id', '?')).removeprefix('sha256:')[:12]}"


class _Wrapper:
    def __init__(self, inner: Any, resolver: Resolver) -> None:
        self._inner = inner
        self._resolver = resolver

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Images(_Wrapper):
    """``client.images`` with names resolved for get/inspect/pull (tag, remove and push work on
    the names as given: an alias never becomes a tag of its own)."""

    def get(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.get(self._resolver.resolve(name), *args, **kwargs)

    def inspect(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.inspect(self._resolver.resolve(name), *args, **kwargs)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """A local build's ``FROM postgres:16`` is served as ``run postgres:16`` is; a remote
        build is resolved by its daemon's own aliases."""
        if self._resolver.local:
            kwargs.setdefault("base_image", self._resolver.resolve)
        return self._inner.build(*args, **kwargs)

    def pull(self, ref: str, *args: Any, **kwargs: Any) -> Any:
        target = self._resolver.resolve(ref, kwargs.get("progress"))
        if target == ref:
            return self._inner.pull(ref, *args, **kwargs)
        progress = kwargs.get("progress")
        if progress is not None:
            progress({"status": f"{ref}: not pulled, served by the local image {target} (image alias)"})
        return self._inner.get(target)


class _Containers(_Wrapper):
    """``client.containers`` with the image name of create/run resolved."""

    def create(self, image: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.create(self._resolver.resolve(image), *args, **kwargs)

    def run(self, image: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.run(self._resolver.resolve(image), *args, **kwargs)


def parse_or_raise(specs: Iterable[str | None]) -> ImageAliases:
    """:meth:`ImageAliases.parse` of the specs that are set, as a PodsError for the faces."""
    try:
        return ImageAliases.parse(s for s in specs if s)
    except InvalidArgumentError as exc:
        raise PodsError(str(exc)) from None
