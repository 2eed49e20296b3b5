import { Controller, Get, Query } from '@nestjs/common';
import { GreetingService } from './greeting.service';

@Controller()
export class AppController {
  constructor(private readonly greetings: GreetingService) {}

  @Get()
  hello(@Query('name') name?: string): string {
    return this.greetings.greet(name ?? 'world');
  }

  @Get('healthz')
  health(): { ok: boolean } {
    return { ok: true };
  }
}
