// Where the tests' free ports come from: service-kit's, which the bench uses too.
export { freePort } from '@netpay/service-kit';
