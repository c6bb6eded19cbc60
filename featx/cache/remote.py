"""Reading a store's files, on disk or over HTTP, with bounded waits and errors that name the URL.

Over HTTP every request has a connect and a read time-out (``FEATX_HTTP_TIMEOUT``
seconds, default 10) and transient failures (a time-out, a refused or dropped
connection, HTTP 5xx or 429) are retried ``FEATX_HTTP_RETRIES`` times (default 2)
with back-off, so a server that accepts and never answers fails in about half a minute
with one sentence naming the URL, instead of hanging for minutes.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from fsspec.implementations.http import HTTPFileSystem

from featx.cache.errors import StoreError

TIMEOUT_ENV = "FEATX_HTTP_TIMEOUT"
RETRIES_ENV = "FEATX_HTTP_RETRIES"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 2
BACKOFF_S = 0.5  # doubled after each try
CONCURRENT_FETCHES = 4

T = TypeVar("T")


class RemoteStoreError(StoreError):
    """A remote store could not be read: no answer in time, no connection, or an HTTP error."""


def http_settings() -> tuple[float, int]:
    """(time-out in seconds, retries) from the environment."""
    try:
        timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
        retries = int(os.environ.get(RETRIES_ENV, DEFAULT_RETRIES))
    except ValueError:
        raise StoreError(f"{TIMEOUT_ENV} must be seconds and {RETRIES_ENV} a whole number of retries") from None
    if timeout <= 0 or retries < 0:
        raise StoreError(f"{TIMEOUT_ENV} must be positive and {RETRIES_ENV} zero or more")
    return timeout, retries


def _transient(error: BaseException) -> bool:
    if isinstance(error, aiohttp.ClientResponseError):
        return error.status >= 500 or error.status == 429
    return isinstance(error, (asyncio.TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError))


def _what(error: BaseException, timeout: float, tries: int) -> str:
    attempts = f"{tries} tries" if tries > 1 else "1 try"
    if isinstance(error, asyncio.TimeoutError):  # aiohttp's ServerTimeoutError is one
        return f"no answer within {timeout:g} s ({attempts}; set {TIMEOUT_ENV} to wait longer)"
    if isinstance(error, aiohttp.ClientResponseError):
        return f"the server answered HTTP {error.status} {error.message}".rstrip() + (
            f" ({attempts})" if _transient(error) else "")
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect ({error.os_error.strerror or error.os_error}; {attempts})"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return f"the server closed the connection without answering ({attempts})"
    return f"{type(error).__name__}: {error} ({attempts})"


class PatientHTTPFileSystem(HTTPFileSystem):
    """fsspec's HTTP filesystem with time-outs, retries and one-sentence errors naming the URL.

    Make it with ``skip_instance_cache=True`` (fsspec would otherwise hand back an instance
    made under other settings): :func:`patient_http`.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.timeout, self.retries = http_settings()
        limits = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout)
        super().__init__(client_kwargs={"timeout": limits}, **kwargs)

    async def _patiently(self, url: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, retried with back-off on transient failures; RemoteStoreError naming ``url`` otherwise."""
        attempt = 0
        while True:
            try:
                return await call()
            except FileNotFoundError:
                raise  # a 404: zarr reads it as "not there"
            except (asyncio.TimeoutError, aiohttp.ClientError) as error:
                if not _transient(error) or attempt == self.retries:
                    raise RemoteStoreError(f"{url}: {_what(error, self.timeout, attempt + 1)}") from None
            await asyncio.sleep(BACKOFF_S * 2**attempt)
            attempt += 1

    async def _cat_file(self, url: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        return await self._patiently(url, lambda: super(PatientHTTPFileSystem, self)._cat_file(url, start, end, **kwargs))

    async def _info(self, url: str, **kwargs: Any) -> dict[str, Any]:
        return await self._patiently(url, lambda: super(PatientHTTPFileSystem, self)._info(url, **kwargs))

    async def _ls(self, url: str, detail: bool = True, **kwargs: Any) -> Any:
        return await self._patiently(url, lambda: super(PatientHTTPFileSystem, self)._ls(url, detail, **kwargs))

    async def _exists(self, path: str, strict: bool = False, **kwargs: Any) -> bool:
        try:
            return await self._patiently(
                path, lambda: super(PatientHTTPFileSystem, self)._exists(path, strict=True, **kwargs))
        except FileNotFoundError:
            return False


def patient_http(asynchronous: bool = False) -> PatientHTTPFileSystem:
    """The filesystem for the current ``FEATX_HTTP_*`` settings: asynchronous for zarr, or blocking."""
    return _shared_http(*http_settings(), asynchronous)


@functools.lru_cache(maxsize=8)
def _shared_http(timeout: float, retries: int, asynchronous: bool) -> PatientHTTPFileSystem:
    """One per settings, so that requests share a session and its open connections."""
    return PatientHTTPFileSystem(asynchronous=asynchronous, skip_instance_cache=True)


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def zarr_store(url: str) -> Any:
    """A read-only zarr store for ``url``: patient over HTTP, plain fsspec for other schemes (s3://)."""
    from zarr.storage import FsspecStore

    if is_http(url):
        return FsspecStore(fs=patient_http(asynchronous=True), path=url, read_only=True)
    return FsspecStore.from_url(url, read_only=True)


class StoreFiles:
    """Named files of one store (``zarr.json``, ``written/c/3``...), read from a folder or a URL."""

    def __init__(self, base: str | Path) -> None:
        self.base = base
        self._fs: Any = None
        if isinstance(base, str):
            import fsspec

            self._fs = patient_http() if is_http(base) else fsspec.url_to_fs(base)[0]

    def where(self, name: str) -> str:
        """The file's path or URL, for messages."""
        return f"{self.base}/{name}" if isinstance(self.base, str) else str(self.base / name)

    def read(self, names: Iterable[str]) -> dict[str, bytes | None]:
        """Each file's bytes (None where it does not exist), fetched a few at a time over HTTP."""
        names = list(names)
        if self._fs is None:
            return {name: _read_local(self.base / name) for name in names}  # type: ignore[operator]
        urls = [self.where(name) for name in names]
        # a few at a time: `python -m http.server` queues 5 connections and drops the rest for a second
        found = self._fs.cat(urls, on_error="return", batch_size=CONCURRENT_FETCHES) if urls else {}
        result: dict[str, bytes | None] = {}
        for name, url in zip(names, urls):
            value = found.get(url, found.get(self._fs._strip_protocol(url)))  # s3fs keys drop "s3://"
            if isinstance(value, FileNotFoundError) or value is None:
                result[name] = None
            elif isinstance(value, BaseException):
                raise value if isinstance(value, StoreError) else StoreError(f"{url}: {value}")
            else:
                result[name] = value
        return result

    def exists(self, name: str) -> bool:
        if self._fs is None:
            return (self.base / name).exists()  # type: ignore[operator]
        return bool(self._fs.exists(self.where(name)))


def _read_local(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
