import nodemailer from 'nodemailer';
import type { Logger } from 'pino';

/**
 * Outgoing mail over real SMTP. Without GATEHOUSE_SMTP_URL nothing is sent and the caller is told,
 * so it can record that the notice could not go out.
 */
export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  readonly configured: boolean;
  send(mail: Mail): Promise<{ sent: boolean; error?: string }>;
}

export function createMailer(options: { smtpUrl: string | undefined; from: string | undefined; logger: Logger }): Mailer {
  if (!options.smtpUrl) {
    return { configured: false, send: async () => ({ sent: false, error: 'no SMTP server is configured (GATEHOUSE_SMTP_URL)' }) };
  }
  const transport = nodemailer.createTransport(options.smtpUrl);
  const from = options.from ?? 'gatehouse@localhost';
  return {
    configured: true,
    async send(mail) {
      try {
        await transport.sendMail({ from, to: mail.to, subject: mail.subject, text: mail.text });
        return { sent: true };
      } catch (error) {
        options.logger.error({ err: error, to: mail.to, subject: mail.subject }, 'mail could not be sent');
        return { sent: false, error: (error as Error).message };
      }
    },
  };
}
