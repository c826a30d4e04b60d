"""The application API: ``durq.App``, its tasks, periodic tasks and hooks.

- ``application.py``: ``App``: the task registry, enqueueing, ``wait``, eager mode, and the
  routing a worker asks of it;
- ``tasks.py``: ``Task`` and ``Configured``, typed by the function they wrap;
- ``periodic.py``: cron schedules, each slot stored once by whichever worker gets there;
- ``hooks.py``: functions called around every attempt.
"""

from durq.app.application import App
from durq.app.tasks import Configured, Task, TaskOptions

__all__ = ["App", "Configured", "Task", "TaskOptions"]
