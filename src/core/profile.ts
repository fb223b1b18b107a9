import { z } from 'zod';

/**
 * The school's policy as data: every value on which the five policies differ. This first part
 * holds what the foundation needs (session lifetimes); password, lockout, MFA and filtering
 * settings join it as those capabilities arrive.
 */
export const profileSchema = z.object({
  sessions: z
    .object({
      /** AC-15: a console left unattended signs out after this long without activity. */
      idleMinutes: z.number().int().min(1).max(24 * 60).default(30),
      /** However active, a session ends after this long and the person signs in again. */
      absoluteHours: z.number().int().min(1).max(24 * 30).default(12),
    })
    .default({ idleMinutes: 30, absoluteHours: 12 }),
});

export type Profile = z.infer<typeof profileSchema>;

export const defaultProfile: Profile = profileSchema.parse({});
