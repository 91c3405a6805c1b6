"""One channel's process: set up logging and signals, build the handler, run the poll loop.

The supervisor starts ``child_main`` in a ``spawn`` child; ``notifyd worker`` runs
``run_channel_process`` in the foreground. Kafka clients are created only in here,
after the process exists, because librdkafka's threads do not survive ``fork()``.
"""

from __future__ import annotations

import asyncio
import ctypes
import faulthandler
import gc
import inspect
import os
import signal
import sys
import threading
from multiprocessing.connection import Connection
from typing import IO, Any

import structlog
from confluent_kafka import Producer

from notifyd.api import Handler
from notifyd.channel import allocator, lifecycle
from notifyd.channel.blocking import BlockingPool
from notifyd.channel.delaytopics import ensure_delay_topics
from notifyd.channel.delivery import Deliverer
from notifyd.channel.eventloop import loop_factory
from notifyd.channel.fallback import came_through_fallback
from notifyd.channel.fallbackroutes import build_inline_handler, failover_factory
from notifyd.channel.flow.build import build_flow
from notifyd.channel.health import ProcessChecks
from notifyd.channel.ledgered import LedgeredDeliverer
from notifyd.channel.notes import Notes
from notifyd.channel.outcomes import OutcomePublisher, reporting
from notifyd.channel.pollloop import PollLoop, StopRequest
from notifyd.channel.producer import AckedProducer
from notifyd.channel.strict import StrictOrder
from notifyd.channel.strictdelivery import StrictDeliverer
from notifyd.config import delays, kafka
from notifyd.config.settings import ChannelSettings, Config
from notifyd.exitcodes import ExitCode
from notifyd.handlers import resolve_handler
from notifyd.ledger.channelside import channel_ledger, guarded
from notifyd.ledger.ledger import Ledger
from notifyd.ledger.opening import LedgerUnavailable
from notifyd.ledger.orderqueue import OrderQueues
from notifyd.ledger.prefetch import batch_reader
from notifyd.logs import configure_logging, kafka_logger
from notifyd.logsampling import LineSampler
from notifyd.metrics import channel_metrics, touch_channel
from notifyd.recipients.preparation import Preparer, make_preparer

PR_SET_PDEATHSIG = 1
# A consumed batch keeps ~10 tracked objects a message alive, so at Python's default of
# 700 allocations a young collection ran every ~70 messages and promoted whole batches
# into the old generations (~20% of a no-op delivery's time in the channel process).
GC_YOUNG_THRESHOLD = 20_000
HANDLER_CLOSE_TIMEOUT = 10.0
DLQ_FLUSH_TIMEOUT = 10.0


def child_main(config: Config, channel: str, member: int, connection: Connection | None,
               stack_file: str | None = None) -> None:
    """Entry point of a supervisor-spawned channel process."""
    sys.exit(run_channel_process(config, channel, member=member, status=connection, stack_file=stack_file))


def run_channel_process(config: Config, channel: str, *, member: int = 0, status: Connection | None = None,
                        stack_file: str | None = None) -> int:
    """Run ``channel`` until SIGTERM/SIGINT, parent death or the memory limit; returns the exit code.

    With ``stack_file``, SIGUSR1 writes every thread's stack there (the supervisor asks
    before killing a stalled process).
    """
    dump = _dump_stacks_on_sigusr1(stack_file)  # first: the signal's default action is to terminate
    # The supervisor blocks its signals while spawning, and a mask survives exec.
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    configure_logging(config.log_level, redact=config.redact, sample=LineSampler(), channel=channel, member=member)
    stop = StopRequest()
    parent_pid = os.getppid()
    _install_signal_handlers(stop)
    _die_with_parent()
    allocator.cap_arenas()  # before the first thread: librdkafka's, the pool's
    allocator.fix_mmap_threshold()
    _tune_gc()
    try:
        return serve(config, channel, stop=stop, member=member, status=status, parent_pid=parent_pid)
    finally:
        if dump is not None:
            faulthandler.unregister(signal.SIGUSR1)
            dump.close()


def _dump_stacks_on_sigusr1(path: str | None) -> IO[str] | None:
    """Register faulthandler's all-thread dump on SIGUSR1; it runs even while a thread holds the GIL."""
    if path is None or threading.current_thread() is not threading.main_thread():
        return None
    try:
        file = open(path, "a")  # appending: the supervisor empties the file before each request
    except OSError:
        return None  # no dump then; the stall is still handled
    faulthandler.register(signal.SIGUSR1, file=file, all_threads=True, chain=False)
    return file


def serve(config: Config, channel: str, *, stop: StopRequest, member: int = 0, status: Connection | None = None,
          parent_pid: int | None = None) -> int:
    """Build the handler and consume until ``stop`` is set; needs no signals, so tests call it in a thread."""
    log = structlog.get_logger("notifyd.channel.worker").bind(channel=channel, member=member)
    reporter = lifecycle.StatusReporter(status, channel=channel, member=member, pid=os.getpid())
    settings = config.channels.get(channel)
    if settings is None:
        log.error("cannot start: no such channel in the config", config=config.path)
        return ExitCode.CONFIG
    try:
        handler = _build_handler(settings)
        prepare = make_preparer(config, channel)
        inline = build_inline_handler(config, settings)  # the fallback's handler, if it is one
    except Exception as exc:  # a broken handler would crash on every restart: a config error
        log.error("cannot start: the handler failed to load", handler=settings.handler,
                  error=config.redact(f"{type(exc).__name__}: {exc}"))
        return ExitCode.CONFIG
    try:
        ledger = channel_ledger(settings, log=log)
    except LedgerUnavailable as exc:  # sending without dedupe is not a fallback: a config error
        log.error("cannot start: the delivery ledger cannot be opened", error=config.redact(str(exc)))
        return ExitCode.CONFIG
    if ledger is not None:
        reporter.ledger_problem = lambda: config.redact(ledger.problem) if ledger.problem else None
    checks = ProcessChecks(parent_pid=parent_pid, memory_limit_mb=settings.memory_limit_mb)
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(_consume(config, settings, handler=handler, prepare=prepare, inline=inline,
                                       status=reporter, stop=stop, checks=checks, log=log, ledger=ledger))
    except Exception as exc:
        log.exception("channel process crashed", error=config.redact(f"{type(exc).__name__}: {exc}"))
        return ExitCode.CRASH


def _build_handler(settings: ChannelSettings) -> Handler:
    handler_class = resolve_handler(settings.handler)
    return handler_class(**dict(settings.options))


async def _consume(config: Config, settings: ChannelSettings, *, handler: Handler, prepare: Preparer,
                   inline: tuple[Handler, Preparer] | None, status: lifecycle.StatusReporter, stop: StopRequest,
                   checks: ProcessChecks, log: Any, ledger: Ledger | None = None) -> int:
    consumer_config = kafka.channel_consumer(config.kafka, settings, logger=kafka_logger())
    pool = BlockingPool(asyncio.get_running_loop(), size=settings.concurrency)
    # One producer for the DLQ, the delay tiers and a fallback channel's hand-off; the poll loop serves it.
    producer = AckedProducer(kafka.dlq_producer(config.kafka, logger=kafka_logger()))
    waiting = delays.delay_topics(settings)
    ensure_delay_topics(kafka.channel_admin(config.kafka, logger=kafka_logger()), topics=settings.topics,
                        delay_topics=waiting, log=log, list_topics=producer.list_topics)
    metrics = channel_metrics()
    touch_channel(metrics, settings.name)
    gate, share_keeper = build_flow(settings, log=log, loop=asyncio.get_running_loop())
    events = _outcome_publisher(config, settings, log=log)
    sender = reporting(guarded(handler, ledger, settings, config.redact), events, retries=settings.retries,
                       redact=config.redact)
    failover = failover_factory(settings, producer=producer, inline=inline, pool=pool, log=log)
    order = strict_order(ledger, log=log) if ledger is not None and settings.ordering == "strict" else None
    if gate is not None and failover is not None:
        gate.divertible = lambda job: not came_through_fallback(job)

    def deliverer(**callbacks: Any) -> Deliverer:
        options = dict(settings=settings, handler=sender, prepare=prepare, pool=pool, producer=producer, metrics=metrics,
                       log=log, redact=config.redact, gate=gate, failover=failover, delay_topics=waiting,
                       notes=Notes.build(ledger=ledger, events=events), **callbacks)
        if ledger is None:
            return Deliverer(**options)
        reader = batch_reader(ledger, channel=settings.name, log=log)
        if order is not None:
            return StrictDeliverer(order=order, before_submit=reader, **options)
        return LedgeredDeliverer(before_submit=reader, **options)

    poll_loop = PollLoop(consumer_config=consumer_config, topics=settings.topics, delay_topics=waiting,
                         delay_consumer_config=kafka.delay_consumer(config.kafka, settings, logger=kafka_logger()),
                         deliverer_factory=deliverer, producer=producer, status=status, stop=stop, checks=checks,
                         shutdown_timeout=config.shutdown_timeout, concurrency=settings.concurrency,
                         metrics=metrics, channel=settings.name, log=log, rebalance_listener=share_keeper)
    try:
        return await poll_loop.run()
    finally:
        await close_handler(handler, timeout=HANDLER_CLOSE_TIMEOUT, log=log)
        if inline is not None:
            await close_handler(inline[0], timeout=HANDLER_CLOSE_TIMEOUT, log=log)
        pool.stop()
        if order is not None:
            order.close()  # its last parks and pops, before the storage closes
        if ledger is not None:
            ledger.close()  # after the pool: no send is left to mark
        if events is not None and events.flush(DLQ_FLUSH_TIMEOUT):
            log.warning("outcome events still unacknowledged at exit; they are lost")
        if producer.flush(DLQ_FLUSH_TIMEOUT):
            log.warning("dlq, delay or fallback records still unacknowledged at exit; their messages will be redelivered")
        log.info("stopped")


def strict_order(ledger: Ledger, *, log: Any) -> StrictOrder:
    """The per-key order of a strict channel, its queues in ``ledger``'s storage."""
    return StrictOrder(OrderQueues(ledger.store, channel=ledger.channel, finished=ledger.finished, log=log), log=log)


def _outcome_publisher(config: Config, settings: ChannelSettings, *, log: Any) -> OutcomePublisher | None:
    if settings.events is None:
        return None
    producer = Producer(kafka.events_producer(config.kafka, logger=kafka_logger()))
    return OutcomePublisher(producer, topic=settings.events, channel=settings.name, log=log)


async def close_handler(handler: Any, *, timeout: float, log: Any) -> None:
    """Call the handler's ``close`` (sync or async), never raising."""
    try:
        result = handler.close()
        if inspect.isawaitable(result):
            await asyncio.wait_for(result, timeout)
    except Exception:
        log.exception("handler close failed")


def _install_signal_handlers(stop: StopRequest) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def record(_signum: int, _frame: Any) -> None:
        stop.set()  # only record: the poll loop notices and drains

    signal.signal(signal.SIGTERM, record)
    signal.signal(signal.SIGINT, record)


def _tune_gc() -> None:
    """Collect cycles less often, and never walk what start-up built (modules, config)."""
    gc.freeze()
    _young, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent dies (the poll loop also checks getppid)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the getppid check in the poll loop still catches an orphaned process
