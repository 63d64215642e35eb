"""A freedesktop notification daemon for the desktop app's end-to-end test (none runs under
Xvfb): owns org.freedesktop.Notifications on the session bus given by DBUS_SESSION_BUS_ADDRESS,
prints each notification it is asked to show as one JSON line on stdout (id, summary, body,
actions), and clicks one when a line `click ID ACTION` arrives on stdin, as a user would: the
ActionInvoked signal, then NotificationClosed (reason 2, dismissed by the user).

Usage: notifications.py   (system python3 with python3-dbus and python3-gi)
"""

import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


class Daemon(dbus.service.Object):
    def __init__(self, bus):
        super().__init__(bus, PATH)
        self.last_id = 0

    @dbus.service.method(NAME, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app_name, replaces_id, icon, summary, body, actions, hints, timeout):
        self.last_id += 1
        shown = {
            "id": self.last_id,
            "app": str(app_name),
            "summary": str(summary),
            "body": str(body),
            "actions": [str(action) for action in actions],
        }

        def announce():
            print(json.dumps(shown), flush=True)
            return False  # once

        # Printed once the reply is on its way, as a daemon shows the popup after answering.
        GLib.idle_add(announce)
        return dbus.UInt32(self.last_id)

    @dbus.service.method(NAME, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["actions", "body"]

    @dbus.service.method(NAME, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("sankalpa-test-notifications", "sankalpa", "1", "1.2")

    @dbus.service.method(NAME, in_signature="u", out_signature="")
    def CloseNotification(self, notification_id):
        self.NotificationClosed(notification_id, dbus.UInt32(3))

    @dbus.service.signal(NAME, signature="us")
    def ActionInvoked(self, notification_id, action_key):
        pass

    @dbus.service.signal(NAME, signature="uu")
    def NotificationClosed(self, notification_id, reason):
        pass


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    name = dbus.service.BusName(NAME, bus, do_not_queue=True)
    daemon = Daemon(bus)
    loop = GLib.MainLoop()

    def on_stdin(source, condition):
        line = sys.stdin.readline()
        if not line:
            loop.quit()
            return False
        command, notification_id, action = line.split()
        if command == "click":
            daemon.ActionInvoked(dbus.UInt32(int(notification_id)), action)
            daemon.NotificationClosed(dbus.UInt32(int(notification_id)), dbus.UInt32(2))
        return True

    GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_stdin)
    print(json.dumps({"ready": True, "name": str(name.get_name())}), flush=True)
    loop.run()


if __name__ == "__main__":
    main()
