import dgram from 'node:dgram';
import net from 'node:net';

/** A port on 127.0.0.1 free for both UDP and TCP (a resolver listens on both). */
export async function freePort(): Promise<number> {
  // A port free for both UDP and TCP.
  for (;;) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const port = udp.address().port;
    const free = await new Promise<boolean>((resolve) => {
      const tcp = net.createServer();
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => tcp.close(() => resolve(true)));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (free) return port;
  }
}

/**
 * A port for a server a test starts with its port given up front (a resolver's GATEHOUSE_DNS_PORT):
 * drawn below the kernel's ephemeral range (32768 and up on Linux), where client sockets, the
 * resolvers' own upstream socket pools among them, get their ports.
 */
export const portBelowEphemeral = (): number => 20_000 + Math.floor(Math.random() * 12_000);
