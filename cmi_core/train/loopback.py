"""DDP on one machine whose rendezvous listens on 127.0.0.1 only.

torch's ``TCPStore`` (the key-value store the processes of a DDP run meet at) binds its
listening socket to every interface, whatever ``MASTER_ADDR`` says, so a DDP run on a laptop
would accept connections from the network for as long as it trains. On one machine nothing
outside needs to reach it: rank 0 binds the socket to 127.0.0.1 itself and hands it to the
store (``master_listen_fd``, libuv backend), and every rank joins the process group through
that store before Lightning's own set-up, which then finds the group initialised. Runs over
several nodes keep Lightning's set-up: there the address must be reachable.
"""

from __future__ import annotations

import socket

import torch.distributed as dist
from pytorch_lightning.strategies import DDPStrategy

LOOPBACK = "127.0.0.1"


class LoopbackDDPStrategy(DDPStrategy):
    """Lightning's ``ddp`` with the rendezvous bound to 127.0.0.1 on a single node."""

    def setup_distributed(self) -> None:
        if self.num_nodes == 1 and not dist.is_initialized():
            self.set_world_ranks()
            port = self.cluster_environment.main_port
            store = self._store(port)
            dist.init_process_group(
                self._get_process_group_backend(),
                store=store,
                rank=self.global_rank,
                world_size=self.world_size,
                timeout=self._timeout,
            )
        super().setup_distributed()

    def _store(self, port: int) -> dist.TCPStore:
        if self.global_rank != 0:
            return dist.TCPStore(LOOPBACK, port, self.world_size, False, timeout=self._timeout)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, port))
        self._listener.listen()
        return dist.TCPStore(
            LOOPBACK,
            port,
            self.world_size,
            True,
            timeout=self._timeout,
            master_listen_fd=self._listener.fileno(),
            use_libuv=True,
        )


def strategy_for(name: str, num_nodes: int) -> str | DDPStrategy:
    """The ``Trainer``'s strategy: plain ``ddp`` on one node binds to the loopback."""
    plain = ("ddp", "ddp_find_unused_parameters_false", "ddp_find_unused_parameters_true")
    if num_nodes != 1 or name not in plain:
        return name
    return LoopbackDDPStrategy(find_unused_parameters=name.endswith("_true"))
