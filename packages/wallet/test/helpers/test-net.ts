// The wallet's test peers (a tiny broker and vendors on one server) live in the one test world, @netpay/test-kit.
export * from '@netpay/test-kit/test-net';
