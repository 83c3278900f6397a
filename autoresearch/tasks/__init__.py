"""The task manager: research tasks that are saved, run by a worker, paused and resumed.

``TaskManager`` saves tasks in an SQLite store (``$AUTORESEARCH_HOME/tasks.db``) and runs the
worker; ``NeuroLink.save_task``/``start_task_worker`` and ``neurolink.tasks`` are the facade's
door to it. See ``docs/tasks.md``.
"""

from autoresearch.tasks.manager import (
    HOME_ENV,
    PRICES_FILE,
    STORE_FILE,
    ProposerFactory,
    TaskManager,
    default_home,
    default_store_path,
)
from autoresearch.tasks.models import (
    DEFAULT_PRICES,
    FINISHED_STATUSES,
    TASK_STATUSES,
    TASK_TYPE,
    LeaseInfo,
    ModelPrice,
    Task,
    TaskBudget,
    TaskCycle,
    TaskInfo,
    TaskOptions,
    TaskStatus,
    load_task,
    price_for,
)
from autoresearch.tasks.runner import TaskRunner, current_task_id
from autoresearch.tasks.store import MIGRATIONS, SCHEMA_VERSION, TaskStore

__all__ = [
    "DEFAULT_PRICES",
    "FINISHED_STATUSES",
    "HOME_ENV",
    "MIGRATIONS",
    "PRICES_FILE",
    "SCHEMA_VERSION",
    "STORE_FILE",
    "TASK_STATUSES",
    "TASK_TYPE",
    "LeaseInfo",
    "ModelPrice",
    "ProposerFactory",
    "Task",
    "TaskBudget",
    "TaskCycle",
    "TaskInfo",
    "TaskManager",
    "TaskOptions",
    "TaskRunner",
    "TaskStatus",
    "TaskStore",
    "current_task_id",
    "default_home",
    "default_store_path",
    "load_task",
    "price_for",
]
