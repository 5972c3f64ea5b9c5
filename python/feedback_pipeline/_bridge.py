"""Glue the Rust core calls: any awaitable as a coroutine, so it can run on a loop."""


async def await_it(awaitable):
    """Awaits ``awaitable`` and returns its result."""
    return await awaitable
